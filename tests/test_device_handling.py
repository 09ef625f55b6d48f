"""Devices end to end: training and the AMD loop settings on every device present, states saved
anywhere load on the CPU, demo models on a device other than the CPU have their own cache file."""

from __future__ import annotations

from dataclasses import asdict

import pytest
import torch

from gfe_viz import AMD_MNIST, encode
from gfe_viz.demo_models import DEMO_ENCODING, cache_folder, train_demo_model
from gfe_viz.experiments.results_io import atomic_torch_save, json_digest, load_torch_file
from gfe_viz.models import initial_model
from gfe_viz.training import EVAL_SEED, EncodeSettings, TrainConfig, Trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")),
]
CONFIG = TrainConfig(batch_size=8, encoding=EncodeSettings(tau=20.0, z0="zeros", amd=AMD_MNIST))


@pytest.fixture(scope="module")
def tiny_images(mnist_splits):
    return mnist_splits.train[:32].clone(), mnist_splits.val[:8].clone()


def storage_locations(path) -> set[str]:
    """Where the tensors in a saved file were when it was written (the tags ``torch.load`` maps)."""
    seen = set()
    torch.load(path, map_location=lambda storage, location: seen.add(location) or storage, weights_only=True)
    return seen


@pytest.mark.parametrize("device", DEVICES)
def test_a_state_saved_on_any_device_holds_cpu_tensors_and_resumes_on_the_cpu(tiny_images, tmp_path, device):
    train, val = tiny_images
    trainer = Trainer(initial_model("gfe", 2, seed=0), train, val, CONFIG, device=device, check_every=4)
    trainer.run(16, progress=False)
    assert next(trainer.model.parameters()).device.type == device
    path = tmp_path / "state.pt"
    atomic_torch_save(trainer.state_dict(), path)
    assert storage_locations(path) == {"cpu"}
    resumed = Trainer(initial_model("gfe", 2, seed=7), train, val, CONFIG, device="cpu")
    resumed.load_state_dict(load_torch_file(path, fix="retrain"))
    for a, b in zip(resumed.model.parameters(), trainer.model.parameters()):
        assert torch.equal(a, b.cpu())
    next_on_device, _ = trainer.train_step()
    next_on_cpu, _ = resumed.train_step()
    assert next_on_cpu == pytest.approx(next_on_device, rel=0 if device == "cpu" else 1e-4)


def test_trainer_encodes_with_its_loop_settings(tiny_images):
    train, val = tiny_images
    chunked = Trainer(initial_model("gfe", 2, seed=0), train, val, CONFIG, device="cpu", check_every=5)
    plain = Trainer(initial_model("gfe", 2, seed=0), train, val, CONFIG, device="cpu")
    result = chunked.encode(val, seed=EVAL_SEED)
    expected = encode(chunked.decoder, val, z0="zeros", tau=20.0, amd=AMD_MNIST, check_every=5)
    assert torch.equal(result.z, expected.z) and torch.equal(result.stats.nfe, expected.stats.nfe)
    torch.testing.assert_close(result.z, plain.encode(val, seed=EVAL_SEED).z, rtol=0, atol=1e-5)
    assert chunked.evaluate() == pytest.approx(plain.evaluate(), rel=1e-5)


@pytest.mark.parametrize(
    "kwargs, needles",
    [
        (dict(check_every=0), ["check_every", "positive integer", "0"]),
        (dict(cuda_graph=1), ["cuda_graph", "1"]),
        pytest.param(
            dict(cuda_graph=True),
            ["cuda_graph=True", "'cpu'"],
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA"),
        ),
    ],
)
def test_bad_loop_settings_fail_when_the_trainer_is_made(tiny_images, kwargs, needles):
    train, val = tiny_images
    with pytest.raises(ValueError) as info:
        Trainer(initial_model("gfe", 2, seed=0), train, val, CONFIG, device="auto", **kwargs)
    for needle in needles:
        assert needle in str(info.value)


def test_cuda_requested_without_cuda_is_a_clear_error(tiny_images):
    if torch.cuda.is_available():
        pytest.skip("checks a machine without CUDA")
    train, val = tiny_images
    with pytest.raises(ValueError, match="device 'cuda' was requested but CUDA is not available"):
        Trainer(initial_model("gfe", 2, seed=0), train, val, CONFIG, device="cuda")


TINY = dict(method="ae", latent_dim=2, n_images=64, batch_size=32, n_val=20)


@pytest.mark.parametrize("device", DEVICES)
def test_demo_model_on_a_device_keeps_cpu_weights_in_its_own_cache_file(tmp_path, device):
    cache = tmp_path / "cache"
    model, _ = train_demo_model(**TINY, cache_dir=cache, device=device)
    assert next(model.parameters()).device.type == device
    (path,) = cache_folder(cache).iterdir()
    assert storage_locations(path) == {"cpu"}
    again, _ = train_demo_model(**TINY, cache_dir=cache, device=device)  # from the cache, onto the device
    assert next(again.parameters()).device.type == device
    assert all(torch.equal(a, b) for a, b in zip(again.parameters(), model.parameters()))
    if device == "cpu":  # the CPU's cache key is the one it always was: no device in it
        config = TrainConfig(method="ae", batch_size=32, seed=0, encoding=DEMO_ENCODING)
        key = {
            "method": "ae",
            "latent_dim": 2,
            "dataset": "mnist",
            "n_images": 64,
            "n_val": 20,
            "config": asdict(config),
        }
        assert path.name == f"ae-mnist-d2-{json_digest(key)}.pt"
    else:
        train_demo_model(**TINY, cache_dir=cache, device="cpu")
        assert len(list(cache_folder(cache).iterdir())) == 2
