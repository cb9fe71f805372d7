"""Fixtures for the training tests: the real datasets (fetched by `make data`) and the committed artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from training import data
from training.jit import load

REPO = Path(__file__).resolve().parents[2]
DATA_ROOT = REPO / "data"
ARTIFACTS = REPO / "artifacts"


def _require_data(dataset: str) -> None:
    try:
        data.verify(DATA_ROOT, dataset)
    except data.DataError as exc:
        pytest.fail(f"{exc} (the README's test command fetches it)")


@pytest.fixture(scope="session")
def mnist_test() -> tuple[torch.Tensor, torch.Tensor]:
    _require_data("mnist")
    return data.load_splits(DATA_ROOT, "mnist", limit=1000)["test"].tensors


@pytest.fixture(scope="session", params=sorted(data.DATASETS))
def committed(request) -> dict:
    """One dataset's committed artifacts: manifest, loaded models and 1,000 test images."""
    dataset = request.param
    _require_data(dataset)
    folder = ARTIFACTS / dataset
    manifest = json.loads((folder / "manifest.json").read_text())
    models = {name: load(folder / m["file"]) for name, m in manifest["models"].items()}
    x, y = data.load_splits(DATA_ROOT, dataset, limit=1000)["test"].tensors
    return {"dataset": dataset, "folder": folder, "manifest": manifest, "models": models, "x": x, "y": y}


class TinyNet(nn.Module):
    """A small conv net on 1x32x32 inputs, for attack tests that need no training."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 15 * 15, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@pytest.fixture
def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return TinyNet().eval()
