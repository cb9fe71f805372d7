"""Response detail: what an answer reveals, by the client's policy (``full``, ``topk`` or ``label``).

Scores are what score-based black-box attacks (Square) climb, and the undefended prediction and the
reconstruction error are oracles on what the defence hides; ``topk`` and ``label`` leave them out. A certified
radius is a margin too: ``topk`` rounds it down, ``label`` keeps only the ``certified`` boolean. Routes
serialise with ``exclude_unset``, so a field the policy hides is absent, not null.
"""

import math
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

from service.config import Detail, Settings
from service.inference import Operation
from service.schemas import ClassifyResponse, ClassScore, DefendedResponse, Prediction

Answer = TypeVar("Answer", ClassifyResponse, DefendedResponse)
HIDDEN = {"probabilities", "top", "undefended", "suspected_adversarial", "reconstruction_mse", "certified_radius"}


def top_scores(prediction: Prediction, class_names: list[str], k: int, decimals: int) -> list[ClassScore]:
    ranked = sorted(enumerate(prediction.probabilities or []), key=lambda item: -item[1])[:k]
    return [ClassScore(label=c, class_name=class_names[c], probability=round(p, decimals)) for c, p in ranked]


def shown(answer: Answer, detail: Detail, settings: Settings, class_names: list[str]) -> Answer:
    """``answer`` as ``detail`` allows: unchanged for ``full``."""
    if detail == "full":
        return answer
    kept = {name: getattr(answer, name) for name in answer.model_fields_set - HIDDEN}
    if detail == "topk":
        kept["top"] = top_scores(answer, class_names, settings.response_top_k, settings.response_decimals)
        radius = getattr(answer, "certified_radius", None)
        if radius is not None:  # rounded down: a coarser radius still holds
            scale = 10**settings.response_decimals
            kept["certified_radius"] = math.floor(radius * scale) / scale
    return type(answer)(**kept)


def encoder(operation: Operation, detail: Detail, settings: Settings) -> Callable[[Any, float], BaseModel]:
    """``operation.encode``, then ``shown``: what ``Endpoint.answer`` encodes each result with."""
    return lambda result, latency_ms: shown(operation.encode(result, latency_ms), detail, settings, operation.class_names)
