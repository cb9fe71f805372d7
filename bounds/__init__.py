"""Sound output bounds for sequential ReLU networks, shared by training and the service (torch only)."""

from .ibp import Bounded, box, certified_margin, prepared
from .radius import LEVELS, RadiusSearch, radius_prior
from .verify import verify

CERTIFICATE_METHODS = ("bounds",)  # what an exported certifiable model carries besides forward
__all__ = ["CERTIFICATE_METHODS", "LEVELS", "Bounded", "RadiusSearch", "box", "certified_margin", "prepared",
           "radius_prior", "verify"]
