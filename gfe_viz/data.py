"""Datasets: MNIST and FashionMNIST through torchvision, a fixed validation split, and a 2-D toy set.

The data folder is, in order: the ``root`` argument, the ``GFE_DATA_DIR`` environment variable,
or a per-user cache folder (``~/.cache/gfe-viz/data``). torchvision downloads into the cache
folder only when ``download=True`` (the default when no folder was given explicitly). Missing,
undownloadable and damaged files each end in one error that names the file or folder and the
layout expected.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import torch

from ._checks import check_choice, check_positive_int
from ._paths import user_folder

DATASETS = {"mnist": "MNIST", "fashionmnist": "FashionMNIST"}
RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_IDX_ITEM_SIZE = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}  # idx type code -> bytes per value
VALIDATION_SEED = 0


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: ``root``, else ``$GFE_DATA_DIR``, else ``~/.cache/gfe-viz/data``."""
    return user_folder(root, "GFE_DATA_DIR", "data")


@dataclass
class ImageSplits:
    """Images as float tensors in [0, 1] of shape (N, 1, 28, 28), with integer labels."""

    train: torch.Tensor
    train_labels: torch.Tensor
    val: torch.Tensor
    val_labels: torch.Tensor
    test: torch.Tensor
    test_labels: torch.Tensor
    name: str


def load_images(
    dataset: str = "mnist", root: str | os.PathLike | None = None, n_val: int = 1000, download: bool | None = None
) -> ImageSplits:
    """Load MNIST or FashionMNIST with a fixed train/validation split of the 60,000 training images.

    The validation images (``n_val``, drawn with a fixed seed) never appear in ``train``.
    ``download`` defaults to True only when neither ``root`` nor ``GFE_DATA_DIR`` names a folder.
    """
    check_choice("dataset", dataset, DATASETS)
    check_positive_int("n_val", n_val)
    folder = data_root(root)
    if download is None:
        download = root is None and not os.environ.get("GFE_DATA_DIR")
    name = DATASETS[dataset]
    raw = folder / name / "raw"
    layout = (
        f"expected torchvision's layout <root>/{name}/raw/ with {', '.join(RAW_FILES)}; point GFE_DATA_DIR "
        f"(or --data-root) at a folder that has them"
    )
    import torchvision

    dataset_cls = getattr(torchvision.datasets, name)
    if not all((raw / f).exists() for f in RAW_FILES):
        if not download:
            raise FileNotFoundError(
                f"{name} files not found under {raw}: {layout}, or allow download=True with network access."
            )
        try:
            dataset_cls(str(folder), train=True, download=True)
        except Exception as exc:  # torchvision's download errors: no network, mirrors down, a partial file
            raise FileNotFoundError(
                f"{name} files not found under {raw} and downloading them there failed "
                f"({type(exc).__name__}: {exc}): {layout}."
            ) from None
    for file in RAW_FILES:
        _check_idx(raw / file, layout)
    train_set = dataset_cls(str(folder), train=True, download=False)
    test_set = dataset_cls(str(folder), train=False, download=False)
    images = _as_float(train_set.data)
    if n_val >= images.shape[0]:
        raise ValueError(f"n_val must be < {images.shape[0]} (the number of training images), got {n_val}")
    order = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(VALIDATION_SEED))
    val_idx, train_idx = order[:n_val], order[n_val:]
    return ImageSplits(
        train=images[train_idx],
        train_labels=train_set.targets[train_idx],
        val=images[val_idx],
        val_labels=train_set.targets[val_idx],
        test=_as_float(test_set.data),
        test_labels=test_set.targets,
        name=dataset,
    )


def _check_idx(path: Path, layout: str) -> None:
    """Refuse an idx file whose size is not the one its header gives (4 magic bytes: 0, 0, type,
    number of dimensions; then each size as a big-endian int32; then the values)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(4)
        ndim = head[3] if len(head) == 4 else 0
        dims = f.read(4 * ndim)
    if (
        len(head) < 4
        or head[:2] != b"\0\0"
        or head[2] not in _IDX_ITEM_SIZE
        or not 1 <= ndim <= 3
        or len(dims) < 4 * ndim
    ):
        raise ValueError(
            f"{path} is damaged: not an idx file (its header is {head[:4].hex() or 'empty'}); replace it "
            f"with a fresh copy ({layout})"
        )
    expected = 4 + 4 * ndim + math.prod(struct.unpack(f">{ndim}i", dims)) * _IDX_ITEM_SIZE[head[2]]
    if size != expected:
        raise ValueError(
            f"{path} is damaged: {size} bytes where its header promises {expected} (truncated?); "
            f"replace it with a fresh copy ({layout})"
        )


def _as_float(data: torch.Tensor) -> torch.Tensor:
    return (data.float() / 255.0).unsqueeze(1)


def stream_indices(start: int, count: int, n: int, seed: int) -> torch.Tensor:
    """Indices ``start .. start+count-1`` of an endless stream of shuffled epochs over ``n`` items.

    Epoch e is ``randperm(n)`` seeded by (seed, e), so the stream is a pure function of its
    position: a resumed run continues with exactly the images it would have seen.
    """
    positions = torch.arange(start, start + count)
    epochs = positions // n
    out = torch.empty(count, dtype=torch.long)
    for epoch in epochs.unique().tolist():
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
        mask = epochs == epoch
        out[mask] = perm[positions[mask] % n]
    return out


def noisy_circle(n: int = 256, dim: int = 2, noise: float = 0.05, seed: int = 0) -> torch.Tensor:
    """Points on the unit circle embedded in the first two of ``dim`` coordinates, plus Gaussian noise.

    A data set whose true latent is one angle: a GFE decoder with latent_dim 1 or 2 learns it in
    seconds, which makes it the instant demo of the lessons.
    """
    check_positive_int("n", n)
    if dim < 2:
        raise ValueError(f"dim must be >= 2, got {dim!r}")
    generator = torch.Generator().manual_seed(seed)
    angle = torch.rand(n, generator=generator) * 2 * math.pi
    points = torch.zeros(n, dim)
    points[:, 0], points[:, 1] = torch.cos(angle), torch.sin(angle)
    return points + noise * torch.randn(n, dim, generator=generator)
