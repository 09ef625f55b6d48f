"""Argument checks whose errors name the parameter, the value received and what is expected."""

from __future__ import annotations

import math

import torch


def check_positive(name: str, value: float) -> None:
    if not _is_real(value) or not value > 0 or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def check_non_negative(name: str, value: float) -> None:
    if not _is_real(value) or not value >= 0 or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def check_positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_choice(name: str, value: str, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")


def check_tensor(name: str, value, *, min_dim: int = 1) -> torch.Tensor:
    """Require a floating-point tensor of at least ``min_dim`` dimensions with finite entries."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    if value.dim() < min_dim or value.shape[0] == 0:
        raise ValueError(
            f"{name} must have shape (B, ...) with B >= 1 and at least {min_dim} dimensions, "
            f"got shape {tuple(value.shape)}"
        )
    if not torch.isfinite(value).all():
        bad = (~torch.isfinite(value)).reshape(value.shape[0], -1).any(1).nonzero().flatten().tolist()
        raise ValueError(f"{name} must contain only finite values; non-finite entries in samples {bad[:10]}")
    return value


def _is_real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
