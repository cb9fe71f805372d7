"""Robustness: adaptive, transfer and black-box attacks on the defenses, adversarial training, and the report."""
