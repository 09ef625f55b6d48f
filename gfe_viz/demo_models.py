"""Small decoders trained in seconds for the lessons, cached on disk so a notebook trains them once.

The cache key is every setting that changes the weights, so a cached model is always the one the
same call would train. The cache folder is ``cache_dir``, else ``$GFE_CACHE_DIR``, else
``~/.cache/gfe-viz/models``. Cached files load with ``weights_only=True``, so a planted one runs no
code; a damaged one is retrained with a warning, so a lesson never stops on it.

Testing aid: ``$GFE_DEMO_WEIGHT_JITTER`` (e.g. ``1e-6``) imitates another machine's rounding.
:func:`jitter_weights` then multiplies every weight of each demo model returned (after loading or
training; the cache keeps the unjittered weights) and of each live experiment's starting model by
``1 + jitter * N(0, 1)``, drawn with a fixed seed. Notebook outputs that are checked must not change.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from ._checks import check_non_negative
from ._paths import user_folder
from .data import load_images
from .device import resolve_device, torch_threads
from .experiments.results_io import DamagedFileError, atomic_torch_save, json_digest, load_torch_file
from .models import initial_model
from .training import EncodeSettings, History, TrainConfig, Trainer

#: Fast encoding for demos: a short horizon and early convergence, the MNIST AMD settings otherwise.
DEMO_ENCODING = EncodeSettings(tau=200.0, z0="zeros")

#: Environment variable read by :func:`jitter_weights` (unset or 0: no jitter).
WEIGHT_JITTER_ENV = "GFE_DEMO_WEIGHT_JITTER"
_JITTER_SEED = 20250110


def jitter_weights(model: nn.Module, jitter: float | None = None) -> nn.Module:
    """Multiply every parameter of ``model`` in place by ``1 + jitter * N(0, 1)`` and return ``model``.

    ``jitter`` defaults to ``$GFE_DEMO_WEIGHT_JITTER`` (0 when unset: the weights are left alone).
    The noise comes from a fixed seed, drawn parameter by parameter in ``model.parameters()`` order,
    so an :class:`Autoencoder` (decoder first) gets the same decoder jitter as a bare decoder.
    """
    name = "jitter"
    if jitter is None:
        name, text = f"${WEIGHT_JITTER_ENV}", os.environ.get(WEIGHT_JITTER_ENV, "").strip()
        try:
            jitter = float(text) if text else 0.0
        except ValueError:
            raise ValueError(f"{name} must be a finite number >= 0, got {text!r}") from None
    check_non_negative(name, jitter)
    if jitter == 0:
        return model
    generator = torch.Generator().manual_seed(_JITTER_SEED)
    with torch.no_grad():
        for parameter in model.parameters():
            noise = torch.randn(parameter.shape, generator=generator, dtype=torch.float64)
            parameter.mul_((1 + jitter * noise).to(parameter.dtype))
    return model


def cache_folder(cache_dir: str | os.PathLike | None = None) -> Path:
    """The demo models' folder: ``cache_dir``, else ``$GFE_CACHE_DIR``, else ``~/.cache/gfe-viz/models``."""
    return user_folder(cache_dir, "GFE_CACHE_DIR", "models")


def train_demo_model(
    method: str = "gfe",
    latent_dim: int = 2,
    dataset: str = "mnist",
    n_images: int = 2000,
    batch_size: int = 32,
    seed: int = 0,
    encoding: EncodeSettings = DEMO_ENCODING,
    n_val: int = 200,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    progress: bool = False,
    device: str | torch.device = "cpu",
) -> tuple[torch.nn.Module, History]:
    """Train (or load from the cache) a ``method`` model ("gfe", "gfe_full" or "ae") on one CPU thread,
    or on ``device``.

    Returns the model (a decoder for GFE, an :class:`Autoencoder` for "ae") on ``device`` and its
    History with checkpoints at 1/4, 1/2, 3/4 and all of ``n_images``. The model passes through
    :func:`jitter_weights` (a no-op unless ``$GFE_DEMO_WEIGHT_JITTER`` is set). Another device
    rounds differently, so it is part of the cache key (the CPU's key is the one it always was);
    the cached weights are CPU tensors either way.
    """
    device = resolve_device(device)
    config = TrainConfig(method=method, batch_size=batch_size, seed=seed, encoding=encoding)
    key = {
        "method": method,
        "latent_dim": latent_dim,
        "dataset": dataset,
        "n_images": n_images,
        "n_val": n_val,
        "config": asdict(config),
        **({} if device.type == "cpu" else {"device": device.type}),
    }
    path = cache_folder(cache_dir) / f"{method}-{dataset}-d{latent_dim}-{json_digest(key)}.pt"
    model = initial_model(method, latent_dim, seed=seed)
    if use_cache and path.exists():
        try:
            saved = load_torch_file(path, fix="retraining it")
            model.load_state_dict(saved["model"])
            return jitter_weights(model.to(device)), History(**saved["history"])
        except DamagedFileError as exc:
            problem = str(exc)
        except (KeyError, TypeError, RuntimeError) as exc:  # RuntimeError: weights of another shape
            problem = f"{path} does not hold this demo model ({type(exc).__name__}: {exc}); retraining it"
        warnings.warn(problem, stacklevel=2)
        model = initial_model(method, latent_dim, seed=seed)  # a failed load_state_dict may have changed it
    splits = load_images(dataset, n_val=n_val)
    trainer = Trainer(model, splits.train, splits.val, config, device=device)
    checkpoints = [n_images * k // 4 for k in range(1, 5)]
    with torch_threads(1):
        history = trainer.run(n_images, checkpoints=checkpoints, progress=progress)
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_torch_save({"model": trainer.state_dict()["model"], "history": asdict(history), "key": key}, path)
    return jitter_weights(model), history
