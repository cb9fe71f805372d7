"""Service-level objectives on exact client-side timings: ``/defended-classify:p95<=8`` (milliseconds)."""

import re
from dataclasses import dataclass

from loadtest.stats import percentile

DEFAULT = "/defended-classify:p95<=8"
_PATTERN = re.compile(r"^(?P<endpoint>/[\w\-/]+):p(?P<q>\d+(?:\.\d+)?)<=(?P<ms>\d+(?:\.\d+)?)$")


@dataclass(frozen=True)
class Slo:
    endpoint: str
    percentile: float
    limit_ms: float

    @classmethod
    def parse(cls, text: str) -> "Slo":
        match = _PATTERN.match(text.replace(" ", ""))
        if not match:
            raise ValueError(f"SLO {text!r} is not ENDPOINT:pQ<=MS, e.g. {DEFAULT}")
        q = float(match["q"])
        if not 0 < q <= 100:
            raise ValueError(f"SLO {text!r}: the percentile must be in (0, 100]")
        return cls(match["endpoint"], q, float(match["ms"]))

    def __str__(self) -> str:
        return f"{self.endpoint}:p{self.percentile:g}<={self.limit_ms:g}"


@dataclass(frozen=True)
class Verdict:
    slo: Slo
    measured_ms: float | None  # None: no successful request to that endpoint
    passed: bool

    def line(self) -> str:
        measured = "no successful requests" if self.measured_ms is None else f"{self.measured_ms:.2f} ms"
        return f"[{'pass' if self.passed else 'FAIL'}] {self.slo}: p{self.slo.percentile:g} = {measured}"


def judge(slo: Slo, timings_ms: list[float]) -> Verdict:
    """An endpoint without successful requests fails: the objective cannot be shown to hold."""
    if not timings_ms:
        return Verdict(slo, None, False)
    measured = percentile(timings_ms, slo.percentile)
    return Verdict(slo, measured, measured <= slo.limit_ms)
