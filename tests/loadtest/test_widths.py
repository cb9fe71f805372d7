"""The width benchmark times each width as the service would run it and reports it against width 0.25."""

import subprocess
import sys

import torch

from loadtest.bench.widths import measure, served
from service.config import REPO_ROOT, Settings
from training.models import VGG16, VGGConfig


def test_a_width_is_served_as_the_eager_model_computes() -> None:
    model = VGG16(VGGConfig(width=0.125)).eval()
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(served(model, Settings(device="cpu"))(x), model(x), atol=1e-4)


def test_each_width_is_timed_and_compared_with_the_shipped_one() -> None:
    results = measure(Settings(device="cpu"), widths=(0.125,), repeats=4, rounds=2)  # 0.25 is always measured
    assert set(results) == {0.125, 0.25}
    assert results[0.25]["ratio_batch1_p50"] == 1.0 and results[0.25]["ratio_per_image_at_64"] == 1.0
    assert results[0.25]["parameters"] > 3 * results[0.125]["parameters"]  # channels double: about 4x the weights
    assert results[0.125]["batch1"]["n"] == 4 and results[0.125]["per_image_ms_at_64"] > 0


def test_the_command_prints_the_table() -> None:
    done = subprocess.run([sys.executable, "-m", "loadtest.bench.widths", "--widths", "0.125", "0.25",
                           "--repeats", "2", "--rounds", "1"], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300, check=True)
    assert "| 0.125 |" in done.stdout and "| 0.25 |" in done.stdout and "x width 0.25" in done.stdout
