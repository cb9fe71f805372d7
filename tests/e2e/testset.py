"""Test helpers for the accuracy check: raw test-set images, the training's preprocessing, FGSM, PNG bytes.

Kept out of ``service/``: the service never attacks anything, and never imports ``training``.
"""

import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from service.config import REPO_ROOT

DATA_ROOT = REPO_ROOT / "data"
TORCHVISION = {"mnist": torchvision.datasets.MNIST, "fashion-mnist": torchvision.datasets.FashionMNIST}


@dataclass(frozen=True)
class Examples:
    """Raw images as PNG bytes, the same images as the model sees them, and their labels."""

    pngs: list[bytes]
    tensors: torch.Tensor
    labels: torch.Tensor


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def tensor_png(image: torch.Tensor) -> bytes:
    """1×H×W in [0,1] -> 8-bit grayscale PNG (FGSM at eps = 153/255 stays on the uint8 grid)."""
    return png(Image.fromarray(image[0].mul(255).round().to(torch.uint8).numpy()))


def preprocess(image: Image.Image, manifest: dict) -> torch.Tensor:
    """The manifest's recipe, written out independently of ``service.images``: L, PIL bilinear, /255."""
    _, height, width = manifest["input_shape"]
    resized = image.convert("L").resize((width, height), Image.Resampling.BILINEAR)
    return torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0)[None]


def load_examples(dataset: str, manifest: dict, indices: range) -> Examples:
    """The raw test set read with torchvision from ``data/`` (the README's test command fetches it)."""
    try:
        test_set = TORCHVISION[dataset](str(DATA_ROOT), train=False, download=False)
    except RuntimeError as exc:
        pytest.fail(f"the {dataset} test set is not under {DATA_ROOT} ({exc}); `make data` fetches it")
    pairs = [test_set[i] for i in indices]
    tensors = torch.stack([preprocess(image, manifest) for image, _ in pairs])
    return Examples([png(image) for image, _ in pairs], tensors, torch.tensor([label for _, label in pairs]))


def load_classifier(folder: Path) -> torch.jit.ScriptModule:
    manifest = json.loads((folder / "manifest.json").read_text())
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=FutureWarning)
        return torch.jit.load(str(folder / manifest["models"][manifest["classifier"]]["file"])).eval()


def fgsm(classifier: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float) -> torch.Tensor:
    """White-box FGSM (Goodfellow et al., 2015): ``x' = clip(x + eps * sign(grad_x CE), 0, 1)``."""
    images = images.clone().requires_grad_(True)
    torch.nn.functional.cross_entropy(classifier(images), labels).backward()
    return (images + eps * images.grad.sign()).clamp(0, 1).detach()
