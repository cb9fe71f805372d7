"""The robustness study's pages (docs/robustness.md's generated blocks and one report page per dataset) and their
figures, from the study's JSON (``docs/robustness/<dataset>.json``) and the certified runs' histories."""
