"""A small training comparison run in memory, keeping each model's weights at every checkpoint.

Two or more methods ("ae", "gfe", "gfe_full") train from the same initial decoder on the same
stream of images with the same optimiser (a :class:`Trainer` each). At every checkpoint the
History gets a row and the weights are copied, so a lesson can show what each model
reconstructed after any number of images seen. The rows have the columns of the data-efficiency
results files.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

from ._checks import check_choice, check_positive_int
from .data import DATASETS, ImageSplits, load_images
from .demo_models import DEMO_ENCODING, jitter_weights
from .experiments.training_run import checkpoint_schedule, history_rows, train_on_schedule
from .models import initial_model
from .training import METHODS, EncodeSettings, TrainConfig, Trainer


@dataclass
class LiveRun:
    """One method's trainer (holding its final model and History) and its weights at each checkpoint."""

    trainer: Trainer
    snapshots: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)

    def model_at(self, images_seen: int) -> nn.Module:
        """A copy of the model with the weights it had after ``images_seen`` images (a checkpoint)."""
        if images_seen not in self.snapshots:
            raise ValueError(
                f"images_seen must be one of the checkpoints {sorted(self.snapshots)}, got {images_seen!r}"
            )
        model = copy.deepcopy(self.trainer.model)
        model.load_state_dict(self.snapshots[images_seen])
        return model

    def reconstruct(self, images: torch.Tensor, images_seen: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstructions (probabilities, images' shape) and per-image losses at a checkpoint,
        as :meth:`gfe_viz.training.Trainer.reconstruct` makes them."""
        return Trainer(self.model_at(images_seen), images, None, self.trainer.config, device="cpu").reconstruct(images)


@dataclass
class LiveExperiment:
    """The runs of one dataset, keyed by method, and the validation images they were scored on."""

    dataset: str
    runs: dict[str, LiveRun]
    val_images: torch.Tensor
    checkpoints: list[int]

    def rows(self) -> list[dict]:
        """One dict per (method, checkpoint) with the columns of the results files (``results_io.FIELDS``)."""
        return [
            row
            for method, run in self.runs.items()
            for row in history_rows(run.trainer.history, self.dataset, method, run.trainer.config.seed)
        ]


def run_live_experiment(
    dataset: str = "mnist",
    methods: tuple[str, ...] = ("ae", "gfe"),
    n_images: int = 512,
    latent_dim: int = 20,
    batch_size: int = 32,
    n_checkpoints: int = 6,
    n_val: int = 100,
    seed: int = 0,
    encoding: EncodeSettings = DEMO_ENCODING,
    splits: ImageSplits | None = None,
    progress: bool = False,
) -> LiveExperiment:
    """Train every one of ``methods`` on the first ``n_images`` images of one stream, on the CPU.

    Arguments:
        dataset: ``"mnist"`` or ``"fashionmnist"`` (ignored when ``splits`` is given).
        methods: any of ``"ae"``, ``"gfe"``, ``"gfe_full"``; all start from the same decoder.
        n_images, batch_size: training images streamed (rounded up to whole batches) and batch size.
        latent_dim: the latent dimension of every model.
        n_checkpoints: log-spaced checkpoints, as in the data-efficiency command (fewer when they coincide).
        n_val: validation images scored at each checkpoint (the first of the validation split).
        seed: initial weights, data stream and z0 draws (the initial weights pass through
            :func:`~gfe_viz.demo_models.jitter_weights`, a testing aid off by default).
        encoding: how GFE encodes (default: the fast demo settings).
        splits: already loaded images, to skip loading.
        progress: show a progress bar per method.

    Returns:
        A :class:`LiveExperiment` with one :class:`LiveRun` per method.
    """
    if isinstance(methods, str) or not methods or len(set(methods)) != len(methods):
        raise ValueError(f"methods must be a non-empty tuple of distinct names from {list(METHODS)}, got {methods!r}")
    for method in methods:
        check_choice("methods[i]", method, METHODS)
    check_positive_int("latent_dim", latent_dim)
    check_positive_int("n_val", n_val)
    for name, value in (("n_images", n_images), ("batch_size", batch_size), ("n_checkpoints", n_checkpoints)):
        check_positive_int(name, value)
    if n_images < batch_size:
        raise ValueError(f"n_images must be >= batch_size={batch_size}, got {n_images}")
    schedule = checkpoint_schedule(n_images, batch_size, n_checkpoints)
    if splits is None:
        check_choice("dataset", dataset, DATASETS)
        splits = load_images(dataset)
    val_images = splits.val[:n_val]
    runs = {}
    for method in methods:
        model = jitter_weights(initial_model(method, latent_dim, tuple(splits.train.shape[1:]), seed))
        config = TrainConfig(method=method, batch_size=batch_size, seed=seed, encoding=encoding)
        run = runs[method] = LiveRun(Trainer(model, splits.train, val_images, config, device="cpu"))
        train_on_schedule(run.trainer, schedule, save=_snapshot(run), progress=progress)
    return LiveExperiment(splits.name, runs, val_images, schedule)


def _snapshot(run: LiveRun):
    def keep(trainer: Trainer, checkpointed: bool) -> None:  # called at checkpoints only (no save_every)
        run.snapshots[trainer.images_seen] = copy.deepcopy(trainer.model.state_dict())

    return keep
