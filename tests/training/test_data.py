import shutil

import pytest
import torch
from PIL import Image

from training import data
from training.__main__ import main as cli

from .conftest import DATA_ROOT


@pytest.fixture
def mnist_copy(tmp_path):
    data.verify(DATA_ROOT, "mnist")
    shutil.copytree(data.raw_dir(DATA_ROOT, "mnist"), data.raw_dir(tmp_path, "mnist"))
    return tmp_path


def test_real_files_verify():
    for dataset in data.DATASETS:
        data.verify(DATA_ROOT, dataset)


def test_a_flipped_byte_is_rejected_naming_the_file(mnist_copy):
    path = data.raw_dir(mnist_copy, "mnist") / "t10k-labels-idx1-ubyte"
    raw = bytearray(path.read_bytes())
    raw[100] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(data.DataError, match="t10k-labels-idx1-ubyte fails its sha256 check.*fetch-data"):
        data.verify(mnist_copy, "mnist")


def test_missing_truncated_and_wrong_magic_files_are_rejected(mnist_copy):
    folder = data.raw_dir(mnist_copy, "mnist")
    (folder / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 60004)
    with pytest.raises(data.DataError, match="IDX magic 2051, expected 2049"):
        data.verify(mnist_copy, "mnist")
    (folder / "train-labels-idx1-ubyte").write_bytes(b"short")
    with pytest.raises(data.DataError, match="has 5 bytes, expected 60008"):
        data.verify(mnist_copy, "mnist")
    (folder / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(data.DataError, match="train-labels-idx1-ubyte is missing"):
        data.verify(mnist_copy, "mnist")


def test_cli_reports_a_corrupt_dataset_in_one_line(mnist_copy, capsys, caplog):
    (data.raw_dir(mnist_copy, "mnist") / "t10k-images-idx3-ubyte").write_bytes(b"")
    code = cli(["evaluate", "--dataset", "mnist", "--root", str(mnist_copy), "--artifacts", str(mnist_copy)])
    assert code == 2
    assert "t10k-images-idx3-ubyte has 0 bytes" in caplog.text
    assert "Traceback" not in capsys.readouterr().err


def test_splits_are_fixed_disjoint_and_at_32x32():
    a = data.load_splits(DATA_ROOT, "mnist")
    assert [len(a[k]) for k in ("train", "val", "test")] == [50_000, 10_000, 10_000]
    x = a["train"].tensors[0]
    assert x.shape[1:] == (1, 32, 32) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    b = data.load_splits(DATA_ROOT, "mnist", limit=100)
    assert torch.equal(a["val"].tensors[0][:100], b["val"].tensors[0])  # same seed, same split
    train_rows = {bytes(r.numpy()) for r in (a["train"].tensors[0][:2000] * 255).round().byte()}
    val_rows = {bytes(r.numpy()) for r in (a["val"].tensors[0][:2000] * 255).round().byte()}
    assert len(train_rows & val_rows) < 5  # disjoint (up to duplicate images inside MNIST)


def test_splits_at_28x28_are_the_datasets_own_pixels_in_the_same_split():
    native = data.load_splits(DATA_ROOT, "mnist", limit=100, side=28)
    resized = data.load_splits(DATA_ROOT, "mnist", limit=100)
    raw = data.DATASETS["mnist"].tv_class(str(DATA_ROOT), train=False, download=False).data[:100]
    assert torch.equal(native["test"].tensors[0][:, 0], raw.float() / 255)  # no resize at all
    assert torch.equal(native["val"].tensors[1], resized["val"].tensors[1])  # the same images in each split


def test_preprocess_any_mode_and_size():
    rgba = Image.new("RGBA", (100, 60), (255, 255, 255, 255))
    t = data.preprocess(rgba)
    assert t.shape == (1, 32, 32) and torch.allclose(t, torch.ones_like(t))
