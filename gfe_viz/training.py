"""Training loops: GFE with the approximate or full adjoint, and the autoencoder baseline.

All three share the decoder architecture, the optimiser (RMSprop), the data stream and the seed,
so that their curves differ only by how latents are found. A :class:`Trainer` trains one model on
a stream of images and records a :class:`History` at checkpoints; its state can be saved and
restored, and the stream is a pure function of the number of images seen, so a resumed run
continues exactly where it stopped.

A trainer watches its run and raises :class:`TrainingDiverged` instead of grinding on once the
training loss is not finite or exceeds :data:`DIVERGED_LOSS_RATIO` times its first value, or the
encoder failed (``non_finite`` or ``step_limit``) for every sample of :data:`DIVERGED_BATCHES`
batches in a row: a diverging decoder costs the encoder tens of thousands of evaluations per
sample and yields nothing usable.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ._checks import check_choice, check_positive, check_positive_int, check_tensor
from .adjoint import approximate_adjoint_gradient, full_adjoint_gradient
from .amd import AMD_MNIST, AMDOptions
from .data import stream_indices
from .device import resolve_device
from .encode import encode
from .losses import check_targets, get_loss
from .models import Autoencoder
from .solution import Status
from .solvers import AMD, Solver, solver_from_name

METHODS = ("gfe", "gfe_full", "ae")
EVAL_SEED = 12345  #: z0 seed of every validation encode, so validation loss depends on the decoder alone
#: seeds lie in [0, MAX_SEED]: the per-batch seeds derived from them (seed * 1_000_003 + images) fit torch's 64 bits
MAX_SEED = 2**32 - 1
DIVERGED_LOSS_RATIO = 100.0  #: a training loss this many times the first batch's means the run diverged
DIVERGED_BATCHES = 3  #: consecutive batches whose every sample failed to encode that mean the run diverged
#: encoder outcomes that count as failures for the divergence watch (not step_underflow: with
#: AMD's stop_at_underflow, as in TRAINING_FAST, it is how a sample at its loss's resolution ends)
FAILED_STATUSES = (Status.NON_FINITE, Status.STEP_LIMIT)


class TrainingDiverged(RuntimeError):
    """The training run diverged (see the module docstring); the message says why and what to change."""


@dataclass
class EncodeSettings:
    """How GFE finds latents during training and validation (the arguments of :func:`encode`)."""

    solver: str = "amd"
    order: int = 1
    acceptance: str = "per_sample"
    z0: str = "uniform"
    tau: float = 1e4
    amd: AMDOptions = AMD_MNIST
    gradient: str = "autograd"  #: how each evaluation differentiates (see :func:`encode`)

    def solver_object(self, check_every: int = 1, cuda_graph: bool = False) -> Solver:
        """The solver these settings name: :class:`~gfe_viz.solvers.AMD` with their ``amd`` options,
        ``acceptance`` and the loop settings given, else the classical solver of that name with its
        defaults (neither the AMD nor the loop settings apply to it)."""
        if self.solver != AMD.name:
            return solver_from_name(self.solver)
        return AMD(self.amd, self.acceptance, check_every, cuda_graph)

    def kwargs(self, check_every: int = 1, cuda_graph: bool = False) -> dict:
        """Keyword arguments for :func:`encode`: the solver object (:meth:`solver_object`), order, tau, gradient."""
        return {
            "solver": self.solver_object(check_every, cuda_graph),
            "order": self.order,
            "tau": self.tau,
            "gradient": self.gradient,
        }


@dataclass
class TrainConfig:
    """Settings shared by every method; the defaults are the authors' MNIST configuration."""

    method: str = "gfe"
    batch_size: int = 5
    lr: float = 5e-4
    rms_alpha: float = 0.9
    eps: float = 1e-6
    loss: str = "bce"
    seed: int = 0
    eval_batch_size: int = 500
    encoding: EncodeSettings = field(default_factory=EncodeSettings)
    #: how validation encodes (GFE); None: as in training. A fast-trained decoder is judged with the paper's.
    eval_encoding: EncodeSettings | None = None

    def __post_init__(self):
        check_choice("method", self.method, METHODS)
        check_positive_int("batch_size", self.batch_size)
        check_positive_int("eval_batch_size", self.eval_batch_size)
        check_positive("lr", self.lr)
        check_positive("eps", self.eps)
        if not isinstance(self.rms_alpha, (int, float)) or not 0 <= self.rms_alpha < 1:
            raise ValueError(f"rms_alpha must be in [0, 1), got {self.rms_alpha!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"seed must be an integer in [0, {MAX_SEED}], got {self.seed!r}")
        if self.method == "gfe_full" and self.encoding.order != 1:
            raise ValueError(f"method 'gfe_full' needs encoding.order=1, got {self.encoding.order}")


@dataclass
class History:
    """One row per checkpoint: images seen, mean training loss since the previous checkpoint,
    validation loss, training wall time (seconds, evaluation excluded) and mean encoder NFE per
    sample since the previous checkpoint (0 for the autoencoder)."""

    images_seen: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    wall_time: list[float] = field(default_factory=list)
    encoder_nfe: list[float] = field(default_factory=list)

    def rows(self) -> list[dict]:
        return [dict(zip(asdict(self), values)) for values in zip(*asdict(self).values())]


class Trainer:
    """Trains ``model`` (an :class:`MLPDecoder`-like decoder for GFE, an :class:`Autoencoder` for
    ``method="ae"``) on ``train_images``, validating on ``val_images``.

    The model and the images move to ``device`` once, here; each step indexes its batch there.
    ``check_every`` and ``cuda_graph`` say how the AMD loop runs (see :func:`~gfe_viz.encode`): they
    change the speed, not the results, so they are not part of the config.
    """

    def __init__(
        self,
        model: nn.Module,
        train_images: torch.Tensor,
        val_images: torch.Tensor | None = None,
        config: TrainConfig | None = None,
        device: str | torch.device | None = "auto",
        *,
        check_every: int = 1,
        cuda_graph: bool = False,
    ):
        self.config = config or TrainConfig()
        check_positive_int("check_every", check_every)
        self.loop = {"check_every": check_every, "cuda_graph": cuda_graph}
        if (self.config.method == "ae") != isinstance(model, Autoencoder):
            expected = "an Autoencoder" if self.config.method == "ae" else "a decoder (not an Autoencoder)"
            raise TypeError(f"method {self.config.method!r} needs {expected}, got {type(model).__name__}")
        self.device = resolve_device(device)
        if cuda_graph is not False and (cuda_graph is not True or self.device.type != "cuda"):
            raise ValueError(
                f"cuda_graph must be True or False, and True only with a CUDA device, got "
                f"cuda_graph={cuda_graph!r} with device {str(self.device)!r}"
            )
        self.model = model.to(self.device)
        self.train_images = check_tensor("train_images", train_images).to(self.device)
        self.val_images = check_tensor("val_images", val_images).to(self.device) if val_images is not None else None
        self.loss_fn = get_loss(self.config.loss)
        check_targets(self.loss_fn, self.train_images, "train_images")
        if self.val_images is not None:
            check_targets(self.loss_fn, self.val_images, "val_images")
        self.optimizer = torch.optim.RMSprop(
            self.model.parameters(), lr=self.config.lr, alpha=self.config.rms_alpha, eps=self.config.eps
        )
        self.images_seen = 0
        self.train_time = 0.0
        self.history = History()
        self._since_checkpoint: list[tuple[float, float]] = []  # (batch loss, mean nfe) per step
        self._watch = {"first_loss": None, "failed_batches": 0}  # the divergence watch's memory

    @property
    def decoder(self) -> nn.Module:
        return self.model.decoder if isinstance(self.model, Autoencoder) else self.model

    def encode(self, images: torch.Tensor, seed: int, record: bool = False, settings: EncodeSettings | None = None):
        """GFE latents of ``images`` with ``settings`` (default: the training settings); z0 drawn from ``seed``."""
        settings = settings or self.config.encoding
        generator = torch.Generator().manual_seed(seed)
        return encode(
            self.decoder,
            images,
            z0=settings.z0,
            loss=self.config.loss,
            record=record,
            generator=generator,
            **settings.kwargs(**self.loop),
        )

    def train_step(self) -> tuple[float, float]:
        """Train on the next batch of the stream; returns (batch loss, mean encoder NFE per sample).

        Raises :class:`TrainingDiverged`, leaving the model as it was, when the batch shows the
        run diverged."""
        cfg = self.config
        idx = stream_indices(self.images_seen, cfg.batch_size, self.train_images.shape[0], cfg.seed)
        x = self.train_images[idx.to(self.device)]
        start = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        nfe, status = 0.0, None
        params = list(self.model.parameters())
        if cfg.method == "ae":
            loss = self.loss_fn(self.model(x), x).mean()
            loss.backward()
        else:
            result = self.encode(x, seed=cfg.seed * 1_000_003 + self.images_seen, record=cfg.method == "gfe_full")
            nfe, status = result.stats.nfe.double().mean().item(), result.status
            if cfg.method == "gfe":
                loss, grads = approximate_adjoint_gradient(result.flow, x, result.z, params)
            else:
                loss, grads = full_adjoint_gradient(result.flow, x, result, params)
            for p, g in zip(params, grads):
                p.grad = g
        loss_value = loss.item()
        self._check_divergence(loss_value, status)
        self.optimizer.step()
        self.train_time += time.perf_counter() - start
        self.images_seen += cfg.batch_size
        self._since_checkpoint.append((loss_value, nfe))
        return loss_value, nfe

    def _check_divergence(self, loss: float, status: torch.Tensor | None) -> None:
        """Raise :class:`TrainingDiverged` when this batch's loss or encoder statuses show divergence."""
        watch = self._watch
        if watch["first_loss"] is None:
            watch["first_loss"] = loss
        first, reason = watch["first_loss"], None
        failed = status is not None and bool(torch.isin(status, status.new_tensor(FAILED_STATUSES)).all())
        watch["failed_batches"] = watch["failed_batches"] + 1 if failed else 0
        if not math.isfinite(loss):
            reason = f"the training loss is {loss}"
        elif first > 0 and loss > DIVERGED_LOSS_RATIO * first:
            reason = (
                f"the training loss rose to {loss:.4g}, over {DIVERGED_LOSS_RATIO:g} times its first value {first:.4g}"
            )
        elif watch["failed_batches"] >= DIVERGED_BATCHES:
            values, counts = (v.tolist() for v in status.unique(return_counts=True))
            counts = ", ".join(f"{Status(v).name.lower()} {n}" for v, n in zip(values, counts))
            reason = (
                f"the encoder failed for every sample of {DIVERGED_BATCHES} batches in a row (last batch: {counts})"
            )
        if reason is not None:
            raise TrainingDiverged(
                f"{self.config.method} training diverged at {self.images_seen} images: {reason}; "
                f"lower the learning rate (lr={self.config.lr:g})"
            )

    def evaluate(self, images: torch.Tensor | None = None) -> float:
        """Mean per-sample loss of reconstructions of ``images`` (default: the validation images).

        GFE encodes them with ``config.eval_encoding`` (default: the training settings) and a
        fixed z0 seed, so the number is a function of the decoder alone.
        """
        images = self.val_images if images is None else images.to(self.device)
        if images is None:
            raise ValueError("evaluate needs images: pass them or give the Trainer val_images")
        total = 0.0
        with torch.no_grad():
            for chunk in images.split(self.config.eval_batch_size):
                if self.config.method == "ae":
                    losses = self.loss_fn(self.model(chunk), chunk)
                else:
                    losses = self.encode(chunk, seed=EVAL_SEED, settings=self.config.eval_encoding).loss
                total += losses.double().sum().item()
        return total / images.shape[0]

    def reconstruct(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstructions of ``images`` (probabilities, the images' shape) and their per-image
        losses; GFE encodes as :meth:`evaluate` does (``config.eval_encoding``, the fixed z0 seed)."""
        images = images.to(self.device)
        with torch.no_grad():
            if self.config.method == "ae":
                logits = self.model(images)
            else:
                logits = self.decoder(self.encode(images, seed=EVAL_SEED, settings=self.config.eval_encoding).z)
            losses = self.loss_fn(logits, images)
        return torch.sigmoid(logits).reshape(images.shape), losses

    def checkpoint(self) -> None:
        """Append a History row: the validation loss now and the training means since the last row."""
        steps = self._since_checkpoint or [(float("nan"), 0.0)]
        h = self.history
        h.images_seen.append(self.images_seen)
        h.train_loss.append(sum(s[0] for s in steps) / len(steps))
        h.encoder_nfe.append(sum(s[1] for s in steps) / len(steps))
        h.val_loss.append(self.evaluate() if self.val_images is not None else float("nan"))
        h.wall_time.append(self.train_time)
        self._since_checkpoint = []

    def run(
        self,
        images: int,
        checkpoints: Sequence[int] = (),
        progress: bool = True,
        on_checkpoint: Callable[[Trainer], None] | None = None,
        on_step: Callable[[Trainer, bool], None] | None = None,
        desc: str | None = None,
    ) -> History:
        """Train until ``images`` images have been seen, checkpointing after each step that passes
        one or more of ``checkpoints``.

        Checkpoints at or below the images already seen are skipped, so calling ``run`` again on
        a restored trainer continues the same schedule. ``on_checkpoint`` runs after each
        checkpoint (e.g. to save the state); ``on_step(trainer, checkpointed)`` after every step.
        ``desc`` labels the progress bar (default: the method).
        """
        check_positive_int("images", images)
        pending = sorted(c for c in set(checkpoints) if c > self.images_seen)
        from tqdm.auto import tqdm

        # tqdm's own ETA would extrapolate images/s across the evaluations; ours adds them up (see _time_left)
        bar = tqdm(
            total=images,
            initial=min(self.images_seen, images),
            unit="img",
            disable=not progress,
            desc=desc or self.config.method,
            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} img [{elapsed}{postfix}]",
        )
        start, eval_times = (self.images_seen, self.train_time), []
        try:
            while self.images_seen < images:
                loss, _ = self.train_step()
                bar.update(min(self.config.batch_size, images - bar.n))
                checkpointed = bool(pending) and self.images_seen >= pending[0]
                if checkpointed:
                    pending = [c for c in pending if c > self.images_seen]
                    began = time.perf_counter()
                    self.checkpoint()
                    eval_times.append(time.perf_counter() - began)
                left = self._time_left(images, start, len(pending), eval_times)
                bar.set_postfix(loss=f"{loss:.4f}", left=_format_left(left, bar.format_interval), refresh=False)
                if checkpointed:
                    if on_checkpoint is not None:
                        on_checkpoint(self)
                if on_step is not None:
                    on_step(self, checkpointed)
        finally:
            bar.close()
        return self.history

    def _time_left(
        self, images: int, start: tuple[int, float], evaluations: int, eval_times: list[float]
    ) -> tuple[float, bool] | None:
        """Seconds to ``images``, and whether they are all of it: the images left at this run's training
        rate since ``start`` (images seen, training time) plus ``evaluations`` checkpoints at their mean
        evaluation time so far. Before this run timed an evaluation (a run resumed between two distant
        checkpoints), the training time alone, marked incomplete (False); None until the rate is known."""
        trained, spent = self.images_seen - start[0], self.train_time - start[1]
        if trained <= 0:
            return None
        seconds = (images - self.images_seen) * spent / trained
        if evaluations == 0 or self.val_images is None:
            return seconds, True
        if not eval_times:
            return seconds, False
        return seconds + evaluations * sum(eval_times) / len(eval_times), True

    def state_dict(self) -> dict:
        """Everything a resumed trainer needs, with every tensor on the CPU, so that a state saved on
        a GPU loads on a machine without one."""
        return _on_cpu(
            {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "images_seen": self.images_seen,
                "train_time": self.train_time,
                "history": asdict(self.history),
                "since_checkpoint": list(self._since_checkpoint),
                "watch": dict(self._watch),
            }
        )

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.images_seen = state["images_seen"]
        self.train_time = state["train_time"]
        self.history = History(**state["history"])
        self._since_checkpoint = [tuple(s) for s in state["since_checkpoint"]]
        self._watch = dict(state["watch"])


def _format_left(left: tuple[float, bool] | None, format_interval: Callable[[float], str]) -> str:
    """The progress bar's time left: ``?`` while unknown, ``>1:02:03`` when the evaluations still to
    come are not yet timed (the training time alone, a lower bound)."""
    if left is None:
        return "?"
    seconds, complete = left
    return ("" if complete else ">") + format_interval(seconds)


def _on_cpu(value):
    """``value`` with every tensor in it (nested in dicts, lists and tuples) on the CPU."""
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, dict):
        return {k: _on_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_on_cpu(v) for v in value)
    return value
