"""The endpoint mix of the Locust users: ``"defended-classify=2,classify=1"`` (a missing weight is 1)."""

ENDPOINTS = ("classify", "defended-classify", "purify")


def parse_mix(text: str) -> dict[str, float]:
    """Weights per endpoint; unknown names, negative weights or an all-zero mix raise ``ValueError``."""
    mix = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.partition("=")
        if name not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {name!r} in --mix; choose from {', '.join(ENDPOINTS)}")
        mix[name] = float(weight or 1)
        if mix[name] < 0:
            raise ValueError(f"negative weight for {name} in --mix")
    if not mix or not sum(mix.values()):
        raise ValueError("--mix needs at least one endpoint with a positive weight")
    return mix
