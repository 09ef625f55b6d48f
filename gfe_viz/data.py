"""Datasets: MNIST and FashionMNIST through torchvision, a fixed validation split, and a 2-D toy set.

The data folder is, in order: the ``root`` argument, the ``GFE_DATA_DIR`` environment variable,
or a per-user cache folder (``~/.cache/gfe-viz/data``). torchvision downloads into the cache
folder only when ``download=True`` (the default when no folder was given explicitly).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ._checks import check_choice, check_positive_int
from ._paths import cache_home

DATASETS = {"mnist": "MNIST", "fashionmnist": "FashionMNIST"}
RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
VALIDATION_SEED = 0


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: ``root``, else ``$GFE_DATA_DIR``, else ``~/.cache/gfe-viz/data``."""
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get("GFE_DATA_DIR"):
        return Path(os.environ["GFE_DATA_DIR"]).expanduser()
    return cache_home() / "data"


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


def load_images(dataset: str = "mnist", root: str | os.PathLike | None = None, n_val: int = 1000,
                download: bool | None = None) -> ImageSplits:
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
    if not download and not all((raw / f).exists() or (raw / f"{f}.gz").exists() for f in RAW_FILES):
        raise FileNotFoundError(
            f"{name} files not found under {raw}: expected torchvision's layout <root>/{name}/raw/ with "
            f"{', '.join(RAW_FILES)}. Point GFE_DATA_DIR (or --data-root) at a folder that has them, "
            f"or allow download=True with network access.")
    import torchvision

    dataset_cls = getattr(torchvision.datasets, name)
    train_set = dataset_cls(str(folder), train=True, download=download)
    test_set = dataset_cls(str(folder), train=False, download=False)
    images = _as_float(train_set.data)
    if n_val >= images.shape[0]:
        raise ValueError(f"n_val must be < {images.shape[0]} (the number of training images), got {n_val}")
    order = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(VALIDATION_SEED))
    val_idx, train_idx = order[:n_val], order[n_val:]
    return ImageSplits(train=images[train_idx], train_labels=train_set.targets[train_idx],
                       val=images[val_idx], val_labels=train_set.targets[val_idx],
                       test=_as_float(test_set.data), test_labels=test_set.targets, name=dataset)


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
