"""Sound output bounds for sequential ReLU networks, shared by training and the service (torch only)."""

from .ibp import Bounded, box, certified_margin
from .verify import verify

CERTIFICATE_METHODS = ("bounds", "certify")  # what an exported certifiable model carries besides forward
__all__ = ["CERTIFICATE_METHODS", "Bounded", "box", "certified_margin", "verify"]
