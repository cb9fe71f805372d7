"""Pages from measurements: markdown tables, the generated blocks of hand-written pages, their figures, and the
figures their sentences quote, each filled from the JSON that holds it. Training, the study and the load tests
write JSON and hand it here:

- ``headline``: the README's and the robustness page's tables (served pipelines, certified models, certificate
  cost); ``results``: docs/results.md;
- ``robustness``: the robustness study's report pages and figures;
- ``bench`` (with ``bench_plots``): docs/performance.md; ``queryattack``: the query-attack block of
  docs/security.md;
- ``quoted``: figures in sentences (``python -m render``); ``markdown``: the helpers.
"""
