"""What a query attacker sees: an ``Oracle`` answers images with labels, maybe scores, and the detector's word.

``HTTPOracle`` asks a real server over its public API, as one client (one API key); the attacks never see
anything else. Images travel as 8-bit PNG, so every query is on the 8-bit grid.
"""

import base64
import io
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Answer:
    label: int | None  # None: refused (429)
    scores: dict[int, float] | None  # class -> probability: every class (full), the top k (topk), none (label)
    flagged: bool


def to_png(image: np.ndarray) -> bytes:
    """``(1, H, W)`` in [0, 1] to an 8-bit grayscale PNG."""
    buffer = io.BytesIO()
    Image.fromarray(np.round(image[0] * 255).astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def on_grid(images: np.ndarray) -> np.ndarray:
    """The images as the server will decode them: rounded to the 8-bit grid."""
    return np.round(np.clip(images, 0, 1) * 255) / 255


def ball(x: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """The ℓ∞ ball around ``x`` (on the grid) within [0, 1], as the 8-bit values at its edges."""
    return np.ceil(np.maximum(x - eps, 0) * 255 - 1e-6) / 255, np.floor(np.minimum(x + eps, 1) * 255 + 1e-6) / 255


def _scores(item: dict) -> dict[int, float] | None:
    if item.get("probabilities") is not None:
        return dict(enumerate(item["probabilities"]))
    if item.get("top") is not None:
        return {entry["label"]: entry["probability"] for entry in item["top"]}
    return None


class HTTPOracle:
    """``POST /defended-classify`` as one client: a JSON batch per call (one image per call for Square)."""

    def __init__(self, http: httpx.Client, dataset: str, api_key: str | None = None, pipeline: str | None = None):
        self.http, self.queries = http, 0
        self.params = {"dataset": dataset} | ({"pipeline": pipeline} if pipeline else {})
        self.headers = {"x-api-key": api_key} if api_key else {}

    def __call__(self, images: np.ndarray) -> list[Answer]:
        self.queries += len(images)
        body = {"images": [base64.b64encode(to_png(image)).decode() for image in images]}
        response = self.http.post("/defended-classify", params=self.params, json=body, headers=self.headers)
        flagged = response.headers.get("x-query-attack") == "suspected"  # a block-mode 429 carries it too
        if response.status_code == 429:
            return [Answer(None, None, flagged)] * len(images)
        response.raise_for_status()
        return [Answer(item["label"], _scores(item), flagged) for item in response.json()]


Oracle = Callable[[np.ndarray], list[Answer]]
"""Answers a batch of ``(n, C, H, W)`` images, one ``Answer`` each."""
