"""Gradient flows in latent space: the vector fields that encoding integrates.

First order:   dz/dt = -alpha(t) grad_z l(x, D(z))
Second order:  z'' + (3 / (t + 1e-5)) z' + alpha(t) grad_z l(x, D(z)) = 0   (Nesterov-like)

A flow holds the decoder, the per-sample loss and the alpha schedule. Its state is ``z`` (B, d)
for the first order and ``[position, velocity]`` (B, 2d) for the second. Targets are passed in
with every call, so a solver can evaluate any subset of a batch (samples that have finished
cost nothing). Each sample's loss depends only on its own latent, so the gradient of the summed
loss is every sample's own gradient.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._checks import check_choice, check_positive
from .fused_gradient import FUSED_LOSSES, fused_layers, fused_loss_and_grad
from .losses import LossFn, check_loss_values, check_targets, get_loss

DAMPING_EPS = 1e-5
ALPHA_SCHEDULES = ("constant", "exponential")
GRADIENTS = ("autograd", "fused", "auto")


class GradientFlow:
    """The first- or second-order gradient flow of ``loss(decoder(z), x)`` in z.

    Arguments:
        decoder: maps latents (n, d) to outputs with n * x[0].numel() elements.
        loss: ``"bce"`` (logits), ``"mse"`` or a callable (output, target) -> (n,).
        order: 1 (gradient flow) or 2 (Nesterov-like flow with 3/t damping).
        alpha: the flow's rate constant.
        alpha_schedule: ``"constant"`` or ``"exponential"`` (alpha * exp(-2 t / tau)).
        tau: the integration horizon, used by the exponential schedule.
        gradient: how ``loss_and_grad`` differentiates: ``"autograd"``, ``"fused"`` (the
            hand-written pass of :mod:`gfe_viz.fused_gradient`, for an MLP decoder with a built-in
            loss) or ``"auto"`` (fused where it applies, autograd otherwise).
    """

    def __init__(
        self,
        decoder: nn.Module,
        loss: str | LossFn = "bce",
        order: int = 1,
        alpha: float = 1.0,
        alpha_schedule: str = "constant",
        tau: float = 1e4,
        gradient: str = "autograd",
    ):
        if not isinstance(decoder, nn.Module):
            raise TypeError(f"decoder must be a torch.nn.Module, got {type(decoder).__name__}")
        if order not in (1, 2):
            raise ValueError(f"order must be 1 or 2, got {order!r}")
        check_positive("alpha", alpha)
        check_choice("alpha_schedule", alpha_schedule, ALPHA_SCHEDULES)
        check_positive("tau", tau)
        check_choice("gradient", gradient, GRADIENTS)
        self.decoder = decoder
        self.loss_fn = get_loss(loss)
        self.loss_name = loss if isinstance(loss, str) else None
        self._fused = fused_layers(decoder) if gradient != "autograd" and self.loss_name in FUSED_LOSSES else None
        if gradient == "fused" and self._fused is None:
            raise ValueError(
                f"gradient='fused' needs an MLP decoder (Linear layers with ELU between them in "
                f"decoder.net) and loss 'bce' or 'mse', got {type(decoder).__name__} with loss {loss!r}; "
                f"use gradient='auto' to fall back to autograd"
            )
        self._checked = False  # see _check_first_evaluation
        self.order = order
        self.alpha = float(alpha)
        self.decay_rate = 2.0 / tau if alpha_schedule == "exponential" else 0.0

    # --- alpha(t) -------------------------------------------------------------------------
    def alpha_at(self, t: torch.Tensor | float) -> torch.Tensor | float:
        """alpha(t) for a tensor (per-sample times) or a float."""
        if self.decay_rate == 0.0:
            return self.alpha
        if isinstance(t, torch.Tensor):
            return self.alpha * torch.exp(-self.decay_rate * t)
        return self.alpha * math.exp(-self.decay_rate * t)

    # --- decoder evaluations --------------------------------------------------------------
    def loss(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-sample loss l(x, D(z)), shape (n,)."""
        output = self._decode_like(z, x)
        values = self.loss_fn(output, x)
        if not self._checked:
            self._check_first_evaluation(x, values, output)
        return values

    def loss_and_grad(self, z: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample loss (n,) and its gradient in z (n, d): one decoder forward and backward."""
        if self._fused is not None:
            if not self._checked:
                self._check_first_evaluation(x)
            return fused_loss_and_grad(self._fused, self.loss_name, z, x)
        with torch.enable_grad():
            z = z.detach().requires_grad_(True)
            loss = self.loss(z, x)
            (grad,) = torch.autograd.grad(loss.sum(), z)
        return loss.detach(), grad

    def _check_first_evaluation(
        self, x: torch.Tensor, values: torch.Tensor | None = None, output: torch.Tensor | None = None
    ) -> None:
        """Once per flow, at its first evaluation: the targets suit the loss, and a loss's values are
        one floating value per sample that depends on the output (a wrong shape would otherwise fail
        deep inside a solver, and a batch mean would silently give wrong latents)."""
        check_targets(self.loss_fn, x)
        if values is not None:
            check_loss_values(values, output)
        self._checked = True

    def _decode_like(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        out = self.decoder(z)
        if out.shape != x.shape:
            if out.shape[0] != x.shape[0] or out[0].numel() != x[0].numel():
                raise ValueError(
                    f"decoder output shape {tuple(out.shape)} does not match the data shape "
                    f"{tuple(x.shape)}: expected (B, ...) with {x[0].numel()} values per sample"
                )
            out = out.reshape(x.shape)
        return out

    # --- state ------------------------------------------------------------------------------
    def initial_state(self, z0: torch.Tensor) -> torch.Tensor:
        """z0 for the first order; [z0, 0] (position, velocity at rest) for the second."""
        return z0 if self.order == 1 else torch.cat([z0, torch.zeros_like(z0)], dim=1)

    def position(self, state: torch.Tensor) -> torch.Tensor:
        return state if self.order == 1 else state[:, : state.shape[1] // 2]

    def keep_or_restart(self, state: torch.Tensor, candidate: torch.Tensor, accepted: torch.Tensor) -> torch.Tensor:
        """The candidate where ``accepted``, else the old state, whose velocity (second order) is
        zeroed: a momentum restart after a rejected step."""
        if self.order == 2:
            d = state.shape[1] // 2
            state = torch.cat([state[:, :d], state[:, d:] * accepted.to(state.dtype).unsqueeze(1)], dim=1)
        return torch.where(accepted.unsqueeze(1), candidate, state)

    # --- integration ------------------------------------------------------------------------
    def euler_step(self, t: torch.Tensor, dt: torch.Tensor, state: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """One step of length ``dt`` (n,) from ``t`` (n,), given grad l at the current position.

        First order: explicit Euler. Second order: the 3/t damping is integrated exactly
        (v is scaled by ((t + eps) / (t + dt + eps))^3), then the force updates v and the new v
        moves the position (semi-implicit Euler). Explicit Euler would leave the position where it
        is on the first step from rest and is unstable in the damping for dt > 2t/3, so no step of
        it could ever pass a loss-decrease test.
        """
        force = grad * (dt * self.alpha_at(t)).unsqueeze(1)
        if self.order == 1:
            return state - force
        d = state.shape[1] // 2
        position, velocity = state[:, :d], state[:, d:]
        decay = ((t + DAMPING_EPS) / (t + dt + DAMPING_EPS)).pow(3).unsqueeze(1)
        velocity = velocity * decay - force
        return torch.cat([position + dt.unsqueeze(1) * velocity, velocity], dim=1)

    def force_norm_sq(self, t: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """||alpha(t) grad l||^2 per sample: ||f||^2 for the first order, the force for the second."""
        alpha = self.alpha_at(t)
        return grad.square().sum(1) * (alpha * alpha)

    def vector_field(self, t: torch.Tensor, state: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """d(state)/dt at scalar time t, for the classical ODE solvers."""
        _, grad = self.loss_and_grad(self.position(state), x)
        force = self.alpha_at(t) * grad
        if self.order == 1:
            return -force
        velocity = state[:, state.shape[1] // 2 :]
        return torch.cat([velocity, -velocity * (3.0 / (t + DAMPING_EPS)) - force], dim=1)
