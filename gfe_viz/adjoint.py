"""Decoder gradients of the GFE training loss: the full adjoint and its approximation.

With z* = z(tau) from the first-order flow, the training loss L = mean_m l(x_m, D(z*_m; theta))
depends on theta directly and through the whole trajectory. The full gradient (Flouris et al.,
arXiv 2412.00864, section 2) integrates lambda backwards from lambda(tau) = dL/dz*, with d lambda/dt = alpha H lambda,
and subtracts integral alpha d_theta(lambda^T grad_z l) dt. Here it is the discrete adjoint of
the recorded Euler steps z_{k+1} = z_k - c_k grad_z l(z_k; theta), c_k = alpha(t_k) dt_k on
accepted steps and 0 otherwise: per step one batched Hessian-vector product (a double backward
through the decoder for all samples at once), so it equals backpropagation through the unrolled
solver to rounding. The approximate adjoint drops the trajectory term: d_theta l at a detached z*.
"""

from __future__ import annotations

import torch

from .flows import GradientFlow
from .solution import EncodeResult


def trajectory_coefficients(flow: GradientFlow, result: EncodeResult) -> tuple[torch.Tensor, torch.Tensor]:
    """The pre-step positions (K, B, d) and step coefficients c_k (K, B) of the attempts that moved."""
    if result.solver != "amd":
        raise ValueError(f"the full adjoint follows AMD's recorded Euler steps, got solver={result.solver!r}")
    if flow.order != 1:
        raise ValueError(f"the full adjoint is implemented for the first-order flow, got order={flow.order}")
    if result.steps is None or result.trajectory is None:
        raise ValueError("the full adjoint needs a recorded solve: call encode(..., record=True)")
    steps = result.steps
    t = torch.nan_to_num(steps.t)
    coefficient = torch.where(steps.accepted, steps.dt * flow.alpha_at(t), torch.zeros_like(steps.dt))
    moved = (coefficient != 0).any(1)
    return result.trajectory.z[:-1][moved], coefficient[moved]


def full_adjoint_gradient(
    flow: GradientFlow, x: torch.Tensor, result: EncodeResult, params: list[torch.Tensor] | None = None
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The training loss mean_m l(x_m, D(z*_m)) and its exact gradient in the decoder's parameters."""
    params = list(flow.decoder.parameters()) if params is None else params
    positions, coefficients = trajectory_coefficients(flow, result)
    positions = positions.to(device=x.device, dtype=x.dtype)
    coefficients = coefficients.to(device=x.device, dtype=x.dtype)
    with torch.enable_grad():
        z_final = result.z.detach().requires_grad_(True)
        loss = flow.loss(z_final, x).mean()
        *grads, lam = torch.autograd.grad(loss, [*params, z_final], allow_unused=True)
        grads = [g if g is not None else torch.zeros_like(p) for g, p in zip(grads, params)]
        for k in range(positions.shape[0] - 1, -1, -1):
            z_k = positions[k].requires_grad_(True)
            (grad_z,) = torch.autograd.grad(flow.loss(z_k, x).sum(), z_k, create_graph=True)
            projected = (lam * grad_z * coefficients[k].unsqueeze(1)).sum()
            hvp, *param_terms = torch.autograd.grad(projected, [z_k, *params], allow_unused=True)
            lam = lam - hvp
            grads = [g - term if term is not None else g for g, term in zip(grads, param_terms)]
    return loss.detach(), grads


def approximate_adjoint_gradient(
    flow: GradientFlow, x: torch.Tensor, z_star: torch.Tensor, params: list[torch.Tensor] | None = None
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The training loss and d_theta l at the detached z*: exact when z* is a stationary point."""
    params = list(flow.decoder.parameters()) if params is None else params
    with torch.enable_grad():
        loss = flow.loss(z_star.detach(), x).mean()
        grads = torch.autograd.grad(loss, params, allow_unused=True)
    return loss.detach(), [g if g is not None else torch.zeros_like(p) for g, p in zip(grads, params)]
