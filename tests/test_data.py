"""Datasets from ../shared/data (never downloaded), the data folder rules, the stream and the toy set."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from gfe_viz.data import RAW_FILES, data_root, load_images, noisy_circle, stream_indices

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _raw(name: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 28, 28) uint8 and labels straight from the idx files."""
    folder = data_root() / name / "raw"
    prefix = "train" if split == "train" else "t10k"
    images = np.fromfile(folder / f"{prefix}-images-idx3-ubyte", dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    labels = np.fromfile(folder / f"{prefix}-labels-idx1-ubyte", dtype=np.uint8, offset=8)
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def _keys(images: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """Two integer fingerprints and the label of every image, as sorted rows (a multiset).

    ``images`` are uint8 or k/255 floats; the fingerprints are exact (integers below 2**24 in float32).
    """
    flat = images.reshape(images.shape[0], -1)
    flat = flat.float() if flat.dtype == torch.uint8 else (flat * 255.0).round()
    w = torch.randint(1, 80, (flat.shape[1], 2), generator=torch.Generator().manual_seed(0)).float()
    h = (flat @ w).numpy().astype(np.int64)
    rows = np.stack([h[:, 0], h[:, 1], labels.numpy()], 1)
    return rows[np.lexsort(rows.T[::-1])]


def _as_bytes(images: torch.Tensor) -> torch.Tensor:
    scaled = images * 255.0
    assert (scaled - scaled.round()).abs().max() < 1e-3, "pixels are k/255"
    return scaled.round().to(torch.uint8).reshape(-1, 28, 28)


@pytest.fixture(scope="module")
def fashion_splits():
    return load_images("fashionmnist", n_val=500, download=False)


def test_data_dir_points_at_the_shared_data():
    root = data_root()
    assert os.environ.get("GFE_DATA_DIR"), "the test configuration sets GFE_DATA_DIR"
    assert root == Path(os.environ["GFE_DATA_DIR"])
    for name in ("MNIST", "FashionMNIST"):
        assert (root / name / "raw" / "train-images-idx3-ubyte").exists()


@pytest.mark.parametrize("dataset, n_val", [("mnist", 1000), ("fashionmnist", 500)])
def test_shapes_range_and_labels(mnist_splits, fashion_splits, dataset, n_val):
    splits = mnist_splits if dataset == "mnist" else fashion_splits
    assert splits.name == dataset
    assert splits.train.shape == (60_000 - n_val, 1, 28, 28)
    assert splits.val.shape == (n_val, 1, 28, 28)
    assert splits.test.shape == (10_000, 1, 28, 28)
    for images in (splits.train, splits.val, splits.test):
        assert images.dtype == torch.float32
        assert images.min() >= 0.0 and images.max() <= 1.0
        assert images.max() == 1.0 and images.mean() > 0.05
    assert splits.train_labels.shape == (60_000 - n_val,) and splits.val_labels.shape == (n_val,)
    assert splits.test_labels.shape == (10_000,)
    assert set(splits.val_labels.tolist()) == set(range(10))


@pytest.mark.parametrize("dataset, name", [("mnist", "MNIST"), ("fashionmnist", "FashionMNIST")])
def test_train_and_validation_partition_the_training_set(mnist_splits, fashion_splits, dataset, name):
    splits = mnist_splits if dataset == "mnist" else fashion_splits
    raw_images, raw_labels = _raw(name, "train")
    both = torch.cat([splits.train, splits.val])
    both_labels = torch.cat([splits.train_labels, splits.val_labels])
    assert np.array_equal(_keys(both, both_labels), _keys(raw_images, raw_labels)), (
        "train + validation must be exactly the 60,000 training images, each used once"
    )
    test_images, test_labels = _raw(name, "test")
    assert torch.equal(_as_bytes(splits.test), test_images) and torch.equal(splits.test_labels, test_labels)
    # the validation set is a shuffled draw, not the first images of the file
    assert not torch.equal(_as_bytes(splits.val), raw_images[: splits.val.shape[0]])


def test_split_is_deterministic(fashion_splits):
    again = load_images("fashionmnist", n_val=500, download=False)
    assert torch.equal(again.val, fashion_splits.val)
    assert torch.equal(again.train_labels, fashion_splits.train_labels)


@pytest.mark.parametrize("dataset, name", [("mnist", "MNIST"), ("fashionmnist", "FashionMNIST")])
def test_offline_without_files_names_the_folder_and_layout(tmp_path, dataset, name):
    with pytest.raises(FileNotFoundError) as info:
        load_images(dataset, root=tmp_path, download=False)
    message = str(info.value)
    assert str(tmp_path / name / "raw") in message
    assert f"{name}/raw" in message
    for file in RAW_FILES:
        assert file in message
    # a partial copy is still reported
    (tmp_path / name / "raw").mkdir(parents=True)
    (tmp_path / name / "raw" / RAW_FILES[0]).write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=name):
        load_images(dataset, root=tmp_path, download=False)


def test_gfe_data_dir_is_honoured(tmp_path, monkeypatch):
    monkeypatch.setenv("GFE_DATA_DIR", str(tmp_path))
    assert data_root() == tmp_path
    assert data_root(tmp_path / "explicit") == tmp_path / "explicit"
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        load_images("mnist")  # a folder is named, so no download is attempted
    monkeypatch.delenv("GFE_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data_root() == tmp_path / "cache" / "gfe-viz" / "data"


@pytest.mark.parametrize("kwargs, name", [(dict(dataset="cifar10"), "dataset"), (dict(n_val=0), "n_val")])
def test_bad_loader_arguments(tmp_path, kwargs, name):
    with pytest.raises(ValueError, match=name):
        load_images(root=tmp_path, download=False, **kwargs)


def test_stream_is_a_pure_function_of_position():
    n, seed = 37, 5
    whole = stream_indices(0, 200, n, seed)
    pieces = torch.cat(
        [stream_indices(0, 13, n, seed), stream_indices(13, 50, n, seed), stream_indices(63, 137, n, seed)]
    )
    assert torch.equal(whole, pieces), "a resumed stream continues with exactly the same images"
    assert torch.equal(stream_indices(41, 7, n, seed), whole[41:48])
    for epoch in range(200 // n):
        block = whole[epoch * n : (epoch + 1) * n]
        assert sorted(block.tolist()) == list(range(n)), f"epoch {epoch} is a permutation"
    assert not torch.equal(whole[:n], whole[n : 2 * n]), "every epoch is shuffled afresh"
    assert not torch.equal(whole, stream_indices(0, 200, n, seed + 1))
    assert whole.dtype == torch.long


def test_noisy_circle():
    points = noisy_circle(300, dim=3, noise=0.05, seed=1)
    assert points.shape == (300, 3)
    assert torch.equal(points, noisy_circle(300, dim=3, noise=0.05, seed=1))
    radius = points[:, :2].norm(dim=1)
    assert (radius - 1).abs().mean() < 0.1
    assert points[:, 2].abs().mean() < 0.1
    assert not torch.equal(points, noisy_circle(300, dim=3, noise=0.05, seed=2))
    with pytest.raises(ValueError, match="dim"):
        noisy_circle(10, dim=1)


# --- missing, undownloadable and damaged data: one error naming the file or folder -------------------------


def _copy_of_mnist(tmp_path) -> Path:
    """A data folder whose MNIST files link to the shared ones (so one can be replaced by a damaged copy)."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for file in RAW_FILES:
        (raw / file).symlink_to(data_root() / "MNIST" / "raw" / file)
    return raw


@pytest.mark.parametrize(
    "damage, message",
    [("truncated", "bytes where its header promises 7840016 (truncated?)"), ("random", "not an idx file")],
)
def test_a_damaged_idx_file_is_named_with_what_to_do(tmp_path, damage, message):
    raw = _copy_of_mnist(tmp_path)
    path = raw / "t10k-images-idx3-ubyte"
    data = path.read_bytes()
    path.unlink()
    path.write_bytes(data[:5000] if damage == "truncated" else b"\x12\x34" + data[2:5000])
    with pytest.raises(ValueError) as info:
        load_images("mnist", root=tmp_path, download=False)
    text = str(info.value)
    assert text.startswith(f"{path} is damaged") and message in text
    assert "replace it with a fresh copy" in text and "MNIST/raw/" in text


def test_a_failed_download_names_the_folder_and_how_to_set_it(tmp_path, monkeypatch):
    import torchvision

    def offline(self):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", offline)
    monkeypatch.delenv("GFE_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError) as info:
        load_images("mnist")
    text = str(info.value)
    assert f"MNIST files not found under {tmp_path / 'gfe-viz' / 'data' / 'MNIST' / 'raw'}" in text
    assert "downloading them there failed (RuntimeError: Error downloading train-images-idx3-ubyte.gz)" in text
    assert "GFE_DATA_DIR (or --data-root)" in text and "<root>/MNIST/raw/ with train-images-idx3-ubyte" in text


@pytest.mark.parametrize("value", ["", "relative/cache"])
def test_an_empty_or_relative_xdg_cache_home_counts_as_unset(monkeypatch, value):
    from gfe_viz.demo_models import cache_folder

    monkeypatch.delenv("GFE_DATA_DIR")
    monkeypatch.delenv("GFE_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", value)
    assert data_root() == Path.home() / ".cache" / "gfe-viz" / "data"
    assert cache_folder() == Path.home() / ".cache" / "gfe-viz" / "models"
