"""Pages from measurements: markdown tables, the generated blocks of hand-written pages, and the figures their
sentences quote, each filled from the JSON that holds it. Training, the study and the load tests write JSON and
hand it here: ``headline`` (the README's and the robustness page's tables), ``results`` (docs/results.md),
``quoted`` (figures in sentences), ``markdown`` (the helpers)."""
