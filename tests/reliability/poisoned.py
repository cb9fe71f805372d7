"""Tiny artifacts whose classifier raises on a "poison" image, as a CUDA fault or a bad kernel would mid-batch.

Any other image gets the tiny brightness classifier's answer, so one server serves both the fault
test and every other reliability test.
"""

import hashlib
import io
import json
import warnings
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from tests.service.tiny_artifacts import BrightnessClassifier, write_artifacts


class PoisonedClassifier(nn.Module):
    """Raises on a batch holding an image with white top-left and bottom-right corners and black other corners."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = BrightnessClassifier()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        corners = x[:, 0, 0, 0] + x[:, 0, -1, -1] - x[:, 0, 0, -1] - x[:, 0, -1, 0]
        if bool((corners == 2.0).any()):
            raise RuntimeError("poisoned batch: simulated inference fault")
        return self.inner(x)


def poison_png(size: int = 32) -> bytes:
    """The image that makes ``PoisonedClassifier`` raise (at the model's 32x32, so no resize blurs it)."""
    image = Image.new("L", (size, size), 0)
    image.putpixel((0, 0), 255)
    image.putpixel((size - 1, size - 1), 255)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_poisoned_artifacts(root: Path) -> Path:
    """``write_artifacts`` with each dataset's classifier swapped for ``PoisonedClassifier``, manifest updated."""
    write_artifacts(root)
    for manifest_path in root.glob("*/manifest.json"):
        path = manifest_path.parent / "classifier.pt"
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=FutureWarning)
            torch.jit.save(torch.jit.freeze(torch.jit.script(PoisonedClassifier().eval())), str(path))
        manifest = json.loads(manifest_path.read_text())
        data = path.read_bytes()
        manifest["files"]["classifier.pt"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        manifest_path.write_text(json.dumps(manifest, indent=1))
    return root
