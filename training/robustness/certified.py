"""Certified accuracy of the served pipelines whose classifier carries its own bounds (``bounds.Bounded``),
and the check that no attack of the suite ever flips an image the bounds certify."""

from __future__ import annotations

from torch import Tensor, nn

from bounds import verify
from ..stats import rate
from .defenses import Defense

CURVE = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5)  # the certified-accuracy curve's radii, as multiples of eps


def certifiable(defense: Defense) -> bool:
    """A pipeline without a purifier whose classifier exports ``bounds``."""
    return defense.purifier is None and hasattr(defense.classifier, "bounds")


def certified(model: nn.Module, images: Tensor, labels: Tensor, eps: float, device) -> Tensor:
    """Per image: correctly classified, and provably so over the l-inf ball of radius ``eps`` (fp32 bounds)."""
    return verify(model, images, labels, eps, device)[1]


def summary(defense: Defense, images: Tensor, labels: Tensor, eps: float, device) -> dict:
    """Certified accuracy at ``eps`` on every image given (per-image hits kept), and along ``CURVE``."""
    hits = certified(defense.classifier, images, labels, eps, device)
    curve = [{"eps": round(f * eps, 4), **rate(certified(defense.classifier, images, labels, f * eps, device))}
             for f in CURVE]
    return {"method": "IBP", "eps": eps, **rate(hits), "hits": "".join("1" if h else "0" for h in hits.tolist()),
            "curve": curve}


def violations(certificate: dict, cells: list[dict]) -> int:
    """Images certified at the certificate's eps that some attack cell at that eps or below flipped: must be 0."""
    certified_images = certificate["hits"]
    return sum(c["hits"][i] == "0" and certified_images[i] == "1"
               for c in cells if c["eps"] <= certificate["eps"] + 1e-9 for i in range(min(c["n"], len(certified_images))))
