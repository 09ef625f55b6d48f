"""Per-sample reconstruction distances l(x, D(z)): one value per sample, averaged over pixels."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def bce_logits(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of logits ``output`` against ``target`` in [0, 1], per-pixel mean, shape (B,)."""
    return F.binary_cross_entropy_with_logits(output, target, reduction="none").flatten(1).mean(1)


def mse(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error, per-pixel mean, shape (B,)."""
    return (output - target).square().flatten(1).mean(1)


LOSSES: dict[str, LossFn] = {"bce": bce_logits, "mse": mse}


def get_loss(loss: str | LossFn) -> LossFn:
    """Look a loss up by name (``"bce"``, ``"mse"``) or pass a per-sample callable through."""
    if callable(loss):
        return loss
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)} or a callable (output, target) -> (B,), got {loss!r}")
    return LOSSES[loss]
