"""Query attacks over the public API, and the benign traffic the detector must let through.

``python -m loadtest.queryattack`` starts real servers, runs a score-based attack (Square) and a label-only one
(HopSkipJump) against ``/defended-classify`` under each response-detail policy and detector mode, streams
benign clients, and writes ``docs/security-queries.json`` and the tables of ``docs/security.md``.
"""
