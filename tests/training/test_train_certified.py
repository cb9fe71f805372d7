"""Certified training: the eps schedule, Shi et al.'s initialization and regularizers, and a run that trains,
checkpoints every epoch, resumes, and exports a model that carries its own bounds."""

import dataclasses
import json
import math

import pytest
import torch

from bounds.ibp import Resample
from training import train_certified
from training.models import CNN7, CNN7Config, ibp_init
from training.runs import device_name, load_checkpoint
from training.train_certified import ramp, warmup_regularizers

from .conftest import DATA_ROOT


def test_the_eps_ramp_starts_at_zero_ends_at_one_and_rises_smoothly() -> None:
    points = [ramp(t / 100) for t in range(101)]
    assert points[0] == 0.0 and math.isclose(points[-1], 1.0)
    assert all(b >= a for a, b in zip(points, points[1:]))
    assert ramp(-1.0) == 0.0 and ramp(2.0) == 1.0
    # the polynomial start meets the linear part with the same value and slope at 0.25
    h = 1e-6
    assert math.isclose(ramp(0.25 - h), ramp(0.25 + h), abs_tol=1e-5)
    left, right = (ramp(0.25) - ramp(0.25 - h)) / h, (ramp(0.25 + h) - ramp(0.25)) / h
    assert math.isclose(left, right, rel_tol=1e-3)


def test_ibp_init_draws_every_weight_but_the_last_with_std_sqrt_2pi_over_fan_in() -> None:
    torch.manual_seed(0)
    model = CNN7(CNN7Config(width=8, linear=64))
    last = model.head.weight.clone()
    ibp_init(model)
    convs = [b.conv.weight for b in model.blocks[:5]]
    for weight in convs + [model.blocks[6].linear.weight]:
        fan_in = weight[0].numel()
        assert math.isclose(weight.std().item(), math.sqrt(2 * math.pi) / fan_in, rel_tol=0.15)
    assert torch.equal(model.head.weight, last)


def test_the_warm_up_regularizers_stay_finite_when_a_layer_has_no_inactive_unit() -> None:
    mid = torch.rand(4, 8, requires_grad=True)
    rad = torch.full((4, 8), 1e-3)
    total = warmup_regularizers([(mid + 1.0, rad), (mid - 0.5, rad)], torch.full((4, 1), 0.01), tol=0.5)
    total.backward()
    assert torch.isfinite(total) and torch.isfinite(mid.grad).all()


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_run_trains_through_the_ramp_checkpoints_each_epoch_and_resumes(tmp_path, monkeypatch, precision) -> None:
    config = train_certified.Config(dataset="mnist", root=DATA_ROOT, workdir=tmp_path, width=4, linear=16,
                                    epochs=4, clean_epochs=1, ramp_epochs=2, limit=256, val_n=32, dry_run=True,
                                    precision=precision, out="cert.ckpt")
    saved = []
    real_save = train_certified.save_checkpoint

    def stop_after_three_epochs(path, *args, **kwargs):
        real_save(path, *args, **kwargs)
        saved.append(kwargs.get("epoch"))
        if len(saved) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(train_certified, "save_checkpoint", stop_after_three_epochs)
    with pytest.raises(KeyboardInterrupt):
        train_certified.run(config)
    monkeypatch.undo()
    _, ckpt = load_checkpoint(tmp_path / "mnist" / "cert.ckpt")
    assert ckpt["epoch"] == 3 and not ckpt.get("complete") and len(ckpt["history"]) == 3
    # another recipe is refused, naming what changed, and leaves the checkpoint as it was
    with pytest.raises(SystemExit, match=r"l1 2e-06 -> 0\.0, robust_ramp False -> True"):
        train_certified.run(dataclasses.replace(config, resume=True, l1=0.0, robust_ramp=True))
    assert load_checkpoint(tmp_path / "mnist" / "cert.ckpt")[1]["epoch"] == 3
    # the precision is the machine's choice, not the recipe's: a checkpoint resumes in the other one
    other = {"fp32": "bf16", "bf16": "fp32"}[precision]
    train_certified.run(dataclasses.replace(config, resume=True, precision=other))
    model, ckpt = load_checkpoint(tmp_path / "mnist" / "cert.ckpt")
    assert ckpt["complete"] and ckpt["kind"] == "cnn7" and len(ckpt["history"]) == 4
    assert ckpt["best_epoch"] >= 3  # ranked only once the ramp is over
    assert [h["precision"] for h in ckpt["history"]] == [precision] * 3 + [other]
    assert ckpt["train_config"]["train_eps"] == 0.3
    assert isinstance(model, CNN7) and set(ckpt["val_metrics"]) == {"accuracy", "certified_accuracy", "eps"}


def test_a_run_at_a_smaller_working_input_resamples_first_and_its_history_is_kept_side_by_side(tmp_path) -> None:
    from training import certified_runs
    from render.robustness.report import certified_runs as runs_table

    config = train_certified.Config(dataset="mnist", root=DATA_ROOT, workdir=tmp_path, width=4, linear=16, side=28,
                                    input_side=32, epochs=2, clean_epochs=1, ramp_epochs=1, limit=256, val_n=32, dry_run=True,
                                    precision="fp32", out="cert28.ckpt")
    train_certified.run(config)
    model, ckpt = load_checkpoint(tmp_path / "mnist" / "cert28.ckpt")
    assert isinstance(model.blocks[0], Resample) and ckpt["config"]["side"] == 28
    assert model(torch.rand(2, 1, 32, 32)).shape == (2, 10)  # the service's 32x32 input
    out = certified_runs.run(certified_runs.Config(dataset="mnist", workdir=tmp_path, docs=tmp_path / "docs",
                                                   checkpoints=("cert28.ckpt",)))
    runs = json.loads(out.read_text())
    assert runs["cert28"]["recipe"]["side"] == 28 and runs["cert28"]["complete"]
    assert runs["cert28"]["history"] == ckpt["history"] and runs["cert28"]["epochs_run"] == 2
    row = runs_table(runs).splitlines()[2]
    machine = device_name("cpu")  # the hardware it trained on, as its history records it
    recipe = "train ε 0.3, robust 0.7, ramp 1, L1 2e-06, population BN, 256 images"
    assert row.startswith(f"| `cert28` | {machine} | fp32 | 4 | {recipe} | 32×32 | 28×28 | 2 of 2 |"), row


def test_a_run_on_the_datasets_own_28x28_exports_a_model_whose_manifest_entry_names_that_input(tmp_path) -> None:
    from service.manifest import ModelEntry
    from training.export import frozen_entry

    config = train_certified.Config(dataset="mnist", root=DATA_ROOT, workdir=tmp_path, width=4, linear=16,
                                    input_side=28, epochs=2, clean_epochs=1, ramp_epochs=1, limit=256, val_n=32,
                                    dry_run=True, precision="fp32", out="native.ckpt")
    train_certified.run(config)
    model, ckpt = load_checkpoint(tmp_path / "mnist" / "native.ckpt")
    assert ckpt["config"]["input_side"] == ckpt["config"]["side"] == 28
    assert not any(isinstance(block, Resample) for block in model.blocks)  # no resize: the images as they are
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    entry = frozen_entry(model, ckpt, tmp_path / "native.pt", "classifier")
    assert entry["input_shape"] == [1, 28, 28] and "1x28x28" in entry["certificate"]["space"]
    assert ModelEntry.model_validate(entry).input_shape == [1, 28, 28]  # what the service reads
