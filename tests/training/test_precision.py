"""Training precision: bf16 autocast with channels_last trains fp32 weights; unknown precisions are refused."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from training.runs import autocast, memory_format, train_epoch


def test_an_unknown_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="precision must be one of"):
        autocast("fp16", "cpu")


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_train_epoch_lowers_the_loss_and_keeps_fp32_weights(precision: str) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 2))
    x = torch.rand(64, 1, 8, 8)
    y = (x.mean((1, 2, 3)) > 0.5).long()
    batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)] * 20
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    before = F.cross_entropy(model(x), y).item()
    train_epoch(model, batches, F.cross_entropy, opt, "cpu", desc="test", precision=precision)
    after = F.cross_entropy(model(x), y).item()
    assert after < before / 2
    assert all(p.dtype == torch.float32 for p in model.parameters())
    conv = model[0].weight
    assert conv.is_contiguous(memory_format=memory_format(precision))
