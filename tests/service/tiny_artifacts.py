"""Write a complete artifact folder from tiny TorchScript models: the artifact contract as a fixture.

The tiny classifier maps mean brightness to a label (0 = black .. 9 = white), so tests can tell
images apart; the tiny purifier adds N(0, noise) and clamps, like the real autoencoder's latent noise.
"""

import hashlib
import io
import json
import struct
import warnings
import zlib
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from bounds import CERTIFICATE_METHODS, Bounded
from bounds.ibp import ConvBlock, Flatten, LinearBlock

CLASS_NAMES = [f"class-{i}" for i in range(10)]
PURIFIERS = ("autoencoder", "autoencoder-fgsm", "autoencoder-pgd")
THRESHOLD = 0.05
CERTIFIED_SIDE = 28  # the certifiable classifier takes the datasets' own 28x28, not the manifest's 32x32


class BrightnessClassifier(nn.Module):
    """``work`` > 0 burns that many 256×256 matmuls per batch, to make a slow model for overload tests."""

    def __init__(self, work: int = 0) -> None:
        super().__init__()
        self.work = work
        self.weight = nn.Parameter(torch.full((256, 256), 1e-3), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch._assert(x.size(-1) == 32 and x.size(-2) == 32, "the manifest 32x32 input")  # as the real VGG needs
        burn = torch.zeros((256, 256), dtype=x.dtype, device=x.device)
        for _ in range(self.work):
            burn = torch.tanh(torch.mm(self.weight, self.weight + burn))
        mean = x.mean(dim=(1, 2, 3)).unsqueeze(1) * 9.0 + burn.sum() * 0.0
        return -10.0 * (mean - torch.arange(10, dtype=x.dtype, device=x.device)) ** 2


class MirrorClassifier(nn.Module):
    """Labels ``9 - level``: a second classifier that tests can tell from the first."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = BrightnessClassifier()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(1.0 - x)


class NoisyIdentity(nn.Module):
    def __init__(self, noise: float = 0.01) -> None:
        super().__init__()
        self.noise = noise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x + self.noise * torch.randn_like(x)).clamp(0, 1)


# Where the certifiable classifier puts each class's brightness: near level / 9, some nearer a neighbour than
# others, so the flat images' certified radii differ (between about 2 and 20 grey levels).
CENTRES = [0.0, 0.15, 0.2, 0.33, 0.45, 0.55, 0.7, 0.76, 0.9, 1.0]


def tiny_certifiable(side: int = CERTIFIED_SIDE) -> Bounded:
    """A ``bounds.Bounded`` network on ``side`` x ``side`` images that labels an image by the class centre nearest
    its mean brightness ``m`` (logit ``2 m c - c^2``). Its layers average with positive weights, so IBP is exact:
    a flat image's certified radius is its distance to the nearest midpoint between two centres."""
    net = Bounded([ConvBlock(1, 1, stride=2), Flatten(), LinearBlock((side // 2) ** 2, 1)], nn.Linear(1, 10))
    centres = torch.tensor(CENTRES)
    with torch.no_grad():
        net.blocks[0].conv.weight.fill_(1 / 9)
        net.blocks[2].linear.weight.fill_(1.0)
        for block in (net.blocks[0], net.blocks[2]):
            layer = getattr(block, "conv", None) or block.linear
            layer.bias.zero_()
            block.bn.running_mean.zero_()
            block.bn.running_var.fill_(1 - block.bn.eps)
            block.bn.weight.fill_(1.0)
            block.bn.bias.zero_()
        net.eval()  # the mean: the padded border averages fewer pixels, so scale by a flat image's output
        net.blocks[2].linear.weight.div_(net.blocks[2](net.blocks[1](net.blocks[0](torch.ones(1, 1, side, side)))))
        net.head.weight.copy_(2 * centres.unsqueeze(1))
        net.head.bias.copy_(-centres**2)
    return net


CERTIFICATE = {"method": "IBP", "eps": 0.045, "space": "the model's input"}  # 11.5 grey levels: 6 of 10 certified


def brightness_png(level: int, size: tuple[int, int] = (28, 28), mode: str = "L") -> bytes:
    """A flat image that the tiny classifier labels ``level`` (0..9)."""
    value = round(level / 9 * 255)
    buffer = io.BytesIO()
    Image.new(mode, size, value if mode == "L" else (value,) * len(mode)).save(buffer, format="PNG")
    return buffer.getvalue()


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A 1x1 PNG whose header claims ``width`` x ``height`` pixels: a few dozen bytes that would decode to GBs."""
    data = brightness_png(0, size=(1, 1))
    header = b"IHDR" + struct.pack(">II", width, height) + data[24:29]  # depth, colour type, ...
    return data[:12] + header + struct.pack(">I", zlib.crc32(header)) + data[33:]


def _save(module: nn.Module, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=FutureWarning)
        keep = list(CERTIFICATE_METHODS) if isinstance(module, Bounded) else []
        torch.jit.save(torch.jit.freeze(torch.jit.script(module.eval()), preserved_attrs=keep), str(path))


def _entry(path: Path) -> dict:
    data = path.read_bytes()
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


# What write_dataset(pipelines=True) adds: a second classifier, a certifiable one, and pipelines that use them.
PIPELINES = {
    "mirror": {"purifier": None, "classifier": "mirror.pt", "description": "the mirror classifier alone",
               "method": "none", "metrics": {"clean_accuracy": 0.5}},
    "autoencoder+mirror": {"purifier": "autoencoder.pt", "classifier": "mirror.pt"},
    "certified": {"purifier": None, "classifier": "certified.pt", "description": "a certifiable classifier",
                  "method": "IBP", "metrics": {}},
}


def write_dataset(folder: Path, dataset: str, work: int = 0, pipelines: bool = False) -> Path:
    """One complete ``artifacts/<dataset>/`` folder in the format of ``training/export.py``; with ``pipelines``,
    also a ``mirror`` classifier, the ``PIPELINES`` and ``autoencoder+mirror`` as the default pipeline."""
    (folder / "samples").mkdir(parents=True)
    _save(BrightnessClassifier(work), folder / "classifier.pt")
    for name in PURIFIERS:
        _save(NoisyIdentity(), folder / f"{name}.pt")
    samples = []
    for level in range(10):
        relative = f"samples/{level:03d}.png"
        (folder / relative).write_bytes(brightness_png(level))
        samples.append({"file": relative, "label": level})
    models = {"classifier": {"file": "classifier.pt", "architecture": "VGG16", "config": {}, "parameters": 0}}
    for name in PURIFIERS:
        models[name] = {"file": f"{name}.pt", "architecture": "ConvAutoencoder", "config": {}, "parameters": 0}
    models["autoencoder"]["detector"] = {"reconstruction_mse_threshold": THRESHOLD, "quantile": 0.99}
    if pipelines:
        _save(MirrorClassifier(), folder / "mirror.pt")
        models["mirror"] = {"file": "mirror.pt", "architecture": "VGG16", "kind": "classifier", "parameters": 0}
        _save(tiny_certifiable(), folder / "certified.pt")
        models["certified"] = {"file": "certified.pt", "architecture": "CNN7", "kind": "classifier",
                               "certificate": CERTIFICATE, "input_shape": [1, CERTIFIED_SIDE, CERTIFIED_SIDE]}
    files = [m["file"] for m in models.values()] + [s["file"] for s in samples]
    manifest = {
        "format_version": 1,
        "dataset": dataset,
        "class_names": CLASS_NAMES,
        "input_shape": [1, 32, 32],
        "value_range": [0.0, 1.0],
        "preprocessing": {"color_mode": "L", "resize": "bilinear", "resize_library": "PIL", "scale": "uint8 / 255"},
        "classifier": "classifier",
        "default_purifier": "autoencoder",
        "models": models,
        "files": {name: _entry(folder / name) for name in files},
        "samples": samples,
        "versions": {"torch": torch.__version__},
        "metrics": {"clean_accuracy": 1.0},
    }
    if pipelines:
        manifest |= {"pipelines": PIPELINES, "default_pipeline": "autoencoder+mirror"}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return folder


def write_artifacts(root: Path, work: int = 0) -> Path:
    """``root/mnist`` and ``root/fashion-mnist``, both tiny."""
    for dataset in ("mnist", "fashion-mnist"):
        write_dataset(root / dataset, dataset, work)
    return root
