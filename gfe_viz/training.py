"""Training loops: GFE with the approximate or full adjoint, and the autoencoder baseline.

All three share the decoder architecture, the optimiser (RMSprop), the data stream and the seed,
so that their curves differ only by how latents are found. A :class:`Trainer` trains one model on
a stream of images and records a :class:`History` at checkpoints; its state can be saved and
restored, and the stream is a pure function of the number of images seen, so a resumed run
continues exactly where it stopped.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn

from ._checks import check_choice, check_positive, check_positive_int, check_tensor
from .adjoint import approximate_adjoint_gradient, full_adjoint_gradient
from .amd import AMD_MNIST, AMDOptions
from .data import stream_indices
from .device import resolve_device
from .encode import encode
from .flows import GradientFlow
from .losses import get_loss
from .models import Autoencoder

METHODS = ("gfe", "gfe_full", "ae")
EVAL_SEED = 12345  #: z0 seed of every validation encode, so validation loss depends on the decoder alone


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

    def kwargs(self) -> dict:
        """Keyword arguments for :func:`encode` (the AMD settings only when the solver is AMD)."""
        amd = {"acceptance": self.acceptance, "amd": self.amd} if self.solver == "amd" else {}
        return {"solver": self.solver, "order": self.order, "tau": self.tau, "gradient": self.gradient, **amd}


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
    ``method="ae"``) on ``train_images``, validating on ``val_images``."""

    def __init__(self, model: nn.Module, train_images: torch.Tensor, val_images: torch.Tensor | None = None,
                 config: TrainConfig | None = None, device: str | torch.device | None = "auto"):
        self.config = config or TrainConfig()
        if (self.config.method == "ae") != isinstance(model, Autoencoder):
            expected = "an Autoencoder" if self.config.method == "ae" else "a decoder (not an Autoencoder)"
            raise TypeError(f"method {self.config.method!r} needs {expected}, got {type(model).__name__}")
        self.device = resolve_device(device)
        self.model = model.to(self.device)
        self.train_images = check_tensor("train_images", train_images).to(self.device)
        self.val_images = check_tensor("val_images", val_images).to(self.device) if val_images is not None else None
        self.loss_fn = get_loss(self.config.loss)
        self.optimizer = torch.optim.RMSprop(self.model.parameters(), lr=self.config.lr, alpha=self.config.rms_alpha,
                                             eps=self.config.eps)
        self.images_seen = 0
        self.train_time = 0.0
        self.history = History()
        self._since_checkpoint: list[tuple[float, float]] = []  # (batch loss, mean nfe) per step

    @property
    def decoder(self) -> nn.Module:
        return self.model.decoder if isinstance(self.model, Autoencoder) else self.model

    def _flow(self) -> GradientFlow:
        return GradientFlow(self.decoder, loss=self.config.loss, order=self.config.encoding.order,
                            tau=self.config.encoding.tau)

    def encode(self, images: torch.Tensor, seed: int, record: bool = False, settings: EncodeSettings | None = None):
        """GFE latents of ``images`` with ``settings`` (default: the training settings); z0 drawn from ``seed``."""
        settings = settings or self.config.encoding
        generator = torch.Generator().manual_seed(seed)
        return encode(self.decoder, images, z0=settings.z0, loss=self.config.loss, record=record,
                      generator=generator, **settings.kwargs())

    def train_step(self) -> tuple[float, float]:
        """Train on the next batch of the stream; returns (batch loss, mean encoder NFE per sample)."""
        cfg = self.config
        idx = stream_indices(self.images_seen, cfg.batch_size, self.train_images.shape[0], cfg.seed)
        x = self.train_images[idx.to(self.device)]
        start = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        nfe = 0.0
        params = list(self.model.parameters())
        if cfg.method == "ae":
            loss = self.loss_fn(self.model(x), x).mean()
            loss.backward()
        else:
            result = self.encode(x, seed=cfg.seed * 1_000_003 + self.images_seen, record=cfg.method == "gfe_full")
            nfe = result.stats.nfe.double().mean().item()
            if cfg.method == "gfe":
                loss, grads = approximate_adjoint_gradient(self._flow(), x, result.z, params)
            else:
                loss, grads = full_adjoint_gradient(self._flow(), x, result, params)
            for p, g in zip(params, grads):
                p.grad = g
        self.optimizer.step()
        loss_value = loss.item()
        self.train_time += time.perf_counter() - start
        self.images_seen += cfg.batch_size
        self._since_checkpoint.append((loss_value, nfe))
        return loss_value, nfe

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

    def run(self, images: int, checkpoints: Sequence[int] = (), progress: bool = True,
            on_checkpoint: Callable[["Trainer"], None] | None = None,
            on_step: Callable[["Trainer", bool], None] | None = None, desc: str | None = None) -> History:
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

        bar = tqdm(total=images, initial=min(self.images_seen, images), unit="img", disable=not progress,
                   desc=desc or self.config.method)
        try:
            while self.images_seen < images:
                loss, _ = self.train_step()
                bar.update(min(self.config.batch_size, images - bar.n))
                bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
                checkpointed = bool(pending) and self.images_seen >= pending[0]
                if checkpointed:
                    pending = [c for c in pending if c > self.images_seen]
                    self.checkpoint()
                    if on_checkpoint is not None:
                        on_checkpoint(self)
                if on_step is not None:
                    on_step(self, checkpointed)
        finally:
            bar.close()
        return self.history

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "images_seen": self.images_seen, "train_time": self.train_time, "history": asdict(self.history),
                "since_checkpoint": list(self._since_checkpoint)}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.images_seen = state["images_seen"]
        self.train_time = state["train_time"]
        self.history = History(**state["history"])
        self._since_checkpoint = [tuple(s) for s in state["since_checkpoint"]]
