"""Per-sample reconstruction distances l(x, D(z)): one value per sample, averaged over pixels.

A loss maps (output, target) to a floating (B,) tensor, one value per sample, that depends on the
output: :func:`check_loss_values` checks a custom loss's values and :func:`check_targets` that
the targets suit the loss (probabilities for BCE on logits).
"""

from __future__ import annotations

from collections.abc import Callable

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


def check_targets(loss: str | LossFn, x: torch.Tensor, name: str = "x") -> None:
    """BCE on logits compares with probabilities: refuse targets ``x`` outside [0, 1], giving the range found."""
    if loss not in ("bce", bce_logits):
        return
    low, high = x.min().item() + 0.0, x.max().item() + 0.0  # + 0.0: no "-0" in the message
    if low < 0 or high > 1:
        raise ValueError(
            f"{name} must lie in [0, 1] for loss 'bce' (its targets are probabilities), got values in "
            f"[{low:.4g}, {high:.4g}]; rescale {name} or use loss='mse'"
        )


def check_loss_values(values, output: torch.Tensor) -> None:
    """A loss must return a floating (B,) tensor, one value per sample of ``output``, that depends on it."""
    expected = f"a floating tensor of shape ({output.shape[0]},), one value per sample"
    if not isinstance(values, torch.Tensor):
        raise TypeError(f"loss must return {expected}, got {type(values).__name__}")
    if not values.is_floating_point():
        raise TypeError(f"loss must return {expected}, got dtype {values.dtype}")
    if values.shape != (output.shape[0],):
        hint = (
            ": it averages over the batch; reduce over each sample's values only, e.g. .flatten(1).mean(1)"
            if values.dim() == 0
            else ""
        )
        raise ValueError(f"loss must return {expected}, got shape {tuple(values.shape)}{hint}")
    if output.requires_grad and not values.requires_grad:
        raise ValueError(
            f"loss must return {expected} that depends on the decoder output, got values without a "
            f"gradient to it (detached or constant)"
        )
