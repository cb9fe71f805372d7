"""Inference service: purify, classify and defended-classify over HTTP, from ``artifacts/`` only."""
