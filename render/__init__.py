"""Pages from measurements: markdown tables, the generated blocks of hand-written pages, and the figures their
sentences quote, each filled from the JSON that holds it."""
