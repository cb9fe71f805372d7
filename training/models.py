"""The paper's two networks, the certifiable CNN7, and their configs; no paths, no argparse, no I/O.

All take ``N x 1 x 32 x 32`` floats in [0, 1] (PAPER.md, "Pipeline"), except a CNN7 given another
``input_side`` (``input_shape``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from bounds.ibp import Bounded, ConvBlock, Flatten, LinearBlock, Resample

INPUT_SHAPE = (1, 32, 32)
NUM_CLASSES = 10


@dataclass(frozen=True)
class AutoencoderConfig:
    """The paper's purifier: ``latent_dim=10`` and ``noise_std=1.0``."""

    latent_dim: int = 10
    noise_std: float = 1.0
    hidden: int = 128

    def to_dict(self) -> dict:
        return asdict(self)


class ConvAutoencoder(nn.Module):
    """Conv encoder -> noisy low-dimensional latent -> transposed-conv decoder.

    The latent gets fresh ``N(0, noise_std)`` noise on every forward pass, in
    training *and* at inference, exactly as in the paper.  There are no skip
    connections: the bottleneck is what strips the perturbation.
    """

    def __init__(self, config: AutoencoderConfig = AutoencoderConfig()) -> None:
        super().__init__()
        self.noise_std = float(config.noise_std)
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 8, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1),
            nn.BatchNorm2d(16),
            nn.GELU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=0),
            nn.GELU(),
            nn.Flatten(),
            nn.Linear(32 * 3 * 3, config.hidden),
            nn.GELU(),
            nn.Linear(config.hidden, config.latent_dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(config.latent_dim, config.hidden),
            nn.GELU(),
            nn.Linear(config.hidden, 32 * 3 * 3),
            nn.GELU(),
            nn.Unflatten(1, (32, 3, 3)),
            nn.ConvTranspose2d(32, 16, 3, stride=2, output_padding=1),
            nn.BatchNorm2d(16),
            nn.GELU(),
            nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1),
            nn.BatchNorm2d(8),
            nn.GELU(),
            nn.ConvTranspose2d(8, 1, 3, stride=2, padding=1, output_padding=1),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        z = self.encoder(x)
        if self.noise_std > 0.0:
            z = z + self.noise_std * torch.randn_like(z)
        return self.decoder(z)


@dataclass(frozen=True)
class VGGConfig:
    """The paper's VGG-16 (4 BN blocks + a 2-hidden-layer head) with a width multiplier."""

    width: float = 0.25
    dropout: float = 0.65
    num_classes: int = NUM_CLASSES

    def channels(self) -> list[int]:
        return [max(1, round(c * self.width)) for c in (64, 128, 256, 512)]

    def hidden(self) -> int:
        return max(1, round(4096 * self.width))

    def to_dict(self) -> dict:
        return asdict(self)


class VGG16(nn.Module):
    """Four [conv3x3-BN-ReLU]x2 + maxpool blocks; at 32x32 the features are C x 2 x 2."""

    def __init__(self, config: VGGConfig = VGGConfig()) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = INPUT_SHAPE[0]
        for out_ch in config.channels():
            for _ in range(2):
                layers += [nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True)]
                in_ch = out_ch
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        hidden = config.hidden()
        self.classifier = nn.Sequential(
            nn.Linear(in_ch * 2 * 2, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(config.dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(config.dropout),
            nn.Linear(hidden, config.num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)
        # reshape, not torch.flatten: a scripted flatten breaks optimize_for_inference.
        return self.classifier(x.reshape(x.size(0), -1))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@dataclass(frozen=True)
class CNN7Config:
    """CNN7 with BN, the standard network of certified training (Gowal et al. 2018; Shi et al. 2021):
    five 3x3 conv blocks (``width``, ``width``, then ``2 width`` with stride 2, twice more) and a
    ``linear``-unit hidden layer. Shi et al. use width 64. It takes ``input_side`` x ``input_side`` images (28:
    the datasets' own, which the service then feeds it unresized); with ``side`` below that, the network first
    resamples its input to ``side`` x ``side`` (a certificate at the input still holds: ``bounds.Resample``)."""

    width: int = 16
    linear: int = 512
    side: int = INPUT_SHAPE[1]
    num_classes: int = NUM_CLASSES
    input_side: int = INPUT_SHAPE[1]

    def to_dict(self) -> dict:
        return asdict(self)


class CNN7(Bounded):
    """CNN7 with BN, whose logit margins bound over an l-inf box (``bounds.Bounded``)."""

    def __init__(self, config: CNN7Config = CNN7Config()) -> None:
        w, side = config.width, config.side // 2
        resample = [Resample(config.side)] if config.side != config.input_side else []
        blocks = [*resample, ConvBlock(INPUT_SHAPE[0], w), ConvBlock(w, w), ConvBlock(w, 2 * w, stride=2),
                  ConvBlock(2 * w, 2 * w), ConvBlock(2 * w, 2 * w), Flatten(),
                  LinearBlock(2 * w * side * side, config.linear)]
        super().__init__(blocks, nn.Linear(config.linear, config.num_classes))
        self.input_side = config.input_side


def input_shape(model: nn.Module) -> tuple[int, int, int]:
    """The ``C x H x W`` a model takes: a CNN7 its own ``input_side``, every other model ``INPUT_SHAPE``."""
    return (INPUT_SHAPE[0], model.input_side, model.input_side) if isinstance(model, CNN7) else INPUT_SHAPE


def ibp_init(model: nn.Module) -> None:
    """Shi et al.'s (2021) IBP initialization: every conv and linear weight but the last drawn from
    N(0, 2 pi / fan_in^2), so that interval widths neither explode nor vanish with depth at initialization."""
    weights = [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    for weight in weights[:-1]:
        fan_in, _ = nn.init._calculate_fan_in_and_fan_out(weight)
        nn.init.normal_(weight, mean=0.0, std=math.sqrt(2 * math.pi) / fan_in)
