"""Benign clients, as query sequences: what the detector must let through.

Each scenario gives every client its own list of ``(endpoint, image)`` queries, one image per request:
- ``stream``: consecutive test images, in order;
- ``retry``: each image sent 1-3 times (a user retrying);
- ``edits``: each image, then one benign edit of it (a crop, a 1-2 pixel shift or a brightness change);
- ``mix``: the load test's traffic: the bundled samples, drawn at random, over the endpoint mix.
"""

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from loadtest.mix import parse_mix

Query = tuple[str, np.ndarray]
LOAD_MIX = "defended-classify=2,classify=1,purify=1"


def crop(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    margin = int(rng.integers(2, 5))
    inner = torch.from_numpy(image[None, :, margin:-margin, margin:-margin].astype(np.float32))
    return F.interpolate(inner, size=image.shape[1:], mode="bilinear", align_corners=False)[0].numpy()


def shift(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Move the content 1-2 pixels (or not at all) along each axis; the border it leaves is black."""
    dy, dx = (int(d) for d in rng.integers(-2, 3, size=2))
    _, height, width = image.shape
    padded = np.pad(image, ((0, 0), (2, 2), (2, 2)))
    return padded[:, 2 - dy : 2 - dy + height, 2 - dx : 2 - dx + width]


def brightness(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(image * rng.uniform(0.8, 1.2), 0, 1)


EDITS: tuple[Callable[[np.ndarray, np.random.Generator], np.ndarray], ...] = (crop, shift, brightness)


def _streams(images: np.ndarray, clients: int, per_client: int) -> list[np.ndarray]:
    """Consecutive, disjoint slices of the test set (wrapping around), one per client."""
    order = np.arange(clients * per_client) % len(images)
    return [images[order[c * per_client : (c + 1) * per_client]] for c in range(clients)]


def scenario(
    name: str, images: np.ndarray, samples: np.ndarray, clients: int, per_client: int, seed: int = 0
) -> list[list[Query]]:
    """``clients`` query lists of ``per_client`` queries each."""
    rng = np.random.default_rng(seed)
    if name == "mix":
        mix = parse_mix(LOAD_MIX)
        names, weights = list(mix), np.array(list(mix.values())) / sum(mix.values())
        return [
            [(str(rng.choice(names, p=weights)), samples[rng.integers(len(samples))]) for _ in range(per_client)]
            for _ in range(clients)
        ]
    out = []
    for stream in _streams(images, clients, per_client):
        queries: list[Query] = []
        for image in stream:
            if name == "stream":
                queries.append(("defended-classify", image))
            elif name == "retry":
                queries += [("defended-classify", image)] * int(rng.integers(1, 4))
            elif name == "edits":
                edit = EDITS[rng.integers(len(EDITS))]
                queries += [("defended-classify", image), ("defended-classify", edit(image, rng))]
            else:
                raise ValueError(f"unknown benign scenario {name!r}")
        out.append(queries[:per_client])
    return out


SCENARIOS = ("stream", "retry", "edits", "mix")
