"""Decoder gradients: the full adjoint against backpropagation through the unrolled solver and finite
differences, and the approximate adjoint at a stationary z*."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gfe_viz import encode
from gfe_viz.adjoint import approximate_adjoint_gradient, full_adjoint_gradient
from gfe_viz.flows import GradientFlow

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small_decoder() -> nn.Module:
    torch.manual_seed(0)
    decoder = nn.Sequential(nn.Linear(2, 5), nn.Tanh(), nn.Linear(5, 4)).double()
    with torch.no_grad():
        decoder[2].weight.mul_(3.0)
    return decoder


def small_data():
    g = torch.Generator().manual_seed(1)
    x = 0.5 * torch.randn(3, 4, generator=g, dtype=torch.float64)
    z0 = 0.1 * torch.randn(3, 2, generator=g, dtype=torch.float64)
    return x, z0


def unrolled_loss(flow: GradientFlow, x: torch.Tensor, z0: torch.Tensor, result) -> tuple[torch.Tensor, torch.Tensor]:
    """The training loss through the recorded solve, differentiable in the decoder parameters, and
    the final z: z <- z - dt alpha(t) grad_z l(z; theta) on every accepted attempt, with the
    schedule held fixed."""
    steps = result.steps
    z = z0.clone()
    with torch.enable_grad():
        for k in range(len(steps)):
            coefficient = torch.where(
                steps.active[k] & steps.accepted[k],
                steps.dt[k] * flow.alpha_at(torch.nan_to_num(steps.t[k])),
                torch.zeros_like(steps.dt[k]),
            )
            if not (coefficient != 0).any():
                continue
            if not z.requires_grad:
                z = z.requires_grad_(True)
            (grad,) = torch.autograd.grad(flow.loss(z, x).sum(), z, create_graph=True)
            z = z - coefficient.unsqueeze(1) * grad
        return flow.loss(z, x).mean(), z


def _relative(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    num = torch.sqrt(sum((u - v).square().sum() for u, v in zip(a, b)))
    den = torch.sqrt(sum(v.square().sum() for v in b))
    return float(num / den)


@pytest.mark.parametrize(
    "acceptance, schedule", [("per_sample", "constant"), ("batch", "constant"), ("per_sample", "exponential")]
)
def test_full_adjoint_matches_backprop_through_the_unrolled_solver(acceptance, schedule):
    decoder = small_decoder()
    x, z0 = small_data()
    tau = 30.0
    # dt0 = 3 is too large at first, so the solve has rejected attempts as well as accepted ones
    result = encode(
        decoder, x, loss="mse", z0=z0, tau=tau, record=True, acceptance=acceptance, alpha_schedule=schedule, dt0=3.0
    )
    assert result.stats.rejected.sum() > 0 and result.stats.accepted.min() > 5
    flow = GradientFlow(decoder, loss="mse", alpha_schedule=schedule, tau=tau)
    loss, grads = full_adjoint_gradient(flow, x, result)
    params = list(decoder.parameters())
    unrolled, z_end = unrolled_loss(flow, x, z0, result)
    torch.testing.assert_close(z_end.detach(), result.z, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(loss, unrolled.detach())
    expected = torch.autograd.grad(unrolled, params)
    assert _relative(grads, list(expected)) < 1e-4
    for g, p in zip(grads, params):
        assert g.shape == p.shape


def test_full_adjoint_matches_central_finite_differences():
    decoder = small_decoder()
    x, z0 = small_data()
    result = encode(decoder, x, loss="mse", z0=z0, tau=10.0, record=True, dt0=3.0)
    flow = GradientFlow(decoder, loss="mse", tau=10.0)
    _, grads = full_adjoint_gradient(flow, x, result)
    params = list(decoder.parameters())
    eps = 1e-6
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for _ in range(4):  # random directions in parameter space
            direction = [torch.randn(p.shape, generator=g, dtype=p.dtype) for p in params]
            for p, v in zip(params, direction):
                p.add_(eps * v)
            up = unrolled_loss(flow, x, z0, result)[0].item()
            for p, v in zip(params, direction):
                p.sub_(2 * eps * v)
            down = unrolled_loss(flow, x, z0, result)[0].item()
            for p, v in zip(params, direction):
                p.add_(eps * v)
            fd = (up - down) / (2 * eps)
            analytic = sum((gr * v).sum() for gr, v in zip(grads, direction)).item()
            assert abs(analytic - fd) <= 1e-4 * abs(fd) + 1e-9, (analytic, fd)
        # and, coordinate by coordinate, the gradient of the first layer's bias
        bias = params[1]
        for j in range(bias.numel()):
            bias[j] += eps
            up = unrolled_loss(flow, x, z0, result)[0].item()
            bias[j] -= 2 * eps
            down = unrolled_loss(flow, x, z0, result)[0].item()
            bias[j] += eps
            fd = (up - down) / (2 * eps)
            assert abs(grads[1][j].item() - fd) <= 1e-4 * abs(fd) + 1e-9


def test_approximate_gradient_equals_full_at_a_stationary_point(linear_problem):
    decoder, x = linear_problem(d=3, P=6, B=4)
    flow = GradientFlow(decoder, loss="mse", tau=200.0)
    result = encode(decoder, x, loss="mse", tau=200.0, conv_tol=0.0, record=True)
    _, grad_z = flow.loss_and_grad(result.z, x)
    # stationary to the resolution AMD reaches here (1.8e-8 on one CPU, below 1e-8 on another)
    assert grad_z.abs().max() < 1e-7, "z* must be a stationary point"
    _, full = full_adjoint_gradient(flow, x, result)
    _, approx = approximate_adjoint_gradient(flow, x, result.z)
    assert _relative(approx, full) < 1e-6
    # far from stationary (a short solve) the two differ: the trajectory term matters
    short = encode(decoder, x, loss="mse", tau=0.5, dt0=0.1, dt_max=0.1, record=True)
    _, full_short = full_adjoint_gradient(flow, x, short)
    _, approx_short = approximate_adjoint_gradient(flow, x, short.z)
    assert _relative(approx_short, full_short) > 1e-2


def test_approximate_gradient_is_the_gradient_at_detached_z():
    decoder = small_decoder()
    x, z0 = small_data()
    flow = GradientFlow(decoder, loss="mse")
    z = z0.clone().requires_grad_(True)
    loss, grads = approximate_adjoint_gradient(flow, x, z)
    expected = torch.autograd.grad(flow.loss(z0, x).mean(), list(decoder.parameters()))
    for a, b in zip(grads, expected):
        torch.testing.assert_close(a, b)
    assert not loss.requires_grad


def test_full_adjoint_needs_a_recorded_first_order_solve(linear_problem):
    decoder, x = linear_problem(B=2)
    flow = GradientFlow(decoder, loss="mse")
    with pytest.raises(ValueError, match="record=True"):
        full_adjoint_gradient(flow, x, encode(decoder, x, loss="mse", tau=1.0))
    with pytest.raises(ValueError, match="order"):
        full_adjoint_gradient(
            GradientFlow(decoder, loss="mse", order=2), x, encode(decoder, x, loss="mse", tau=1.0, order=2, record=True)
        )


@pytest.mark.parametrize("solver, options", [("dopri5", {}), ("rk4", {"dt": 0.5}), ("euler", {"dt": 0.5})])
def test_full_adjoint_of_a_recorded_classical_solve_names_the_solver(linear_problem, solver, options):
    decoder, x = linear_problem(B=2)
    flow = GradientFlow(decoder, loss="mse")
    recorded = encode(decoder, x, loss="mse", solver=solver, tau=1.0, record=True, **options)
    with pytest.raises(ValueError, match=f"(?i)amd|{solver}"):
        full_adjoint_gradient(flow, x, recorded)
