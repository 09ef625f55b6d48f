"""Flows and losses: gradients, alpha schedules, the second-order state, and first versus second order."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gfe_viz import MLPDecoder, encode
from gfe_viz.flows import GradientFlow
from gfe_viz.losses import bce_logits, get_loss, mse

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_losses_are_per_sample_pixel_means():
    g = torch.Generator().manual_seed(0)
    out = torch.randn(3, 1, 4, 4, generator=g, dtype=torch.float64)
    target = torch.rand(3, 1, 4, 4, generator=g, dtype=torch.float64)
    expected_bce = torch.stack([F.binary_cross_entropy_with_logits(o, t) for o, t in zip(out, target)])
    torch.testing.assert_close(bce_logits(out, target), expected_bce)
    torch.testing.assert_close(mse(out, target), ((out - target) ** 2).mean((1, 2, 3)))
    assert get_loss("bce") is bce_logits and get_loss("mse") is mse
    custom = lambda o, t: (o - t).abs().sum(1)  # noqa: E731
    assert get_loss(custom) is custom


def test_gradient_is_each_samples_own_and_matches_the_analytic_one(linear_problem):
    decoder, x = linear_problem(d=3, P=6, B=4)
    flow = GradientFlow(decoder, loss="mse")
    z = torch.randn(4, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    loss, grad = flow.loss_and_grad(z, x)
    W, b = decoder.weight.detach(), decoder.bias.detach()
    residual = z @ W.T + b - x
    torch.testing.assert_close(loss, residual.square().mean(1))
    torch.testing.assert_close(grad, 2.0 / 6 * residual @ W)
    assert not loss.requires_grad and not grad.requires_grad
    for i in range(4):  # a sample's gradient does not depend on its batch-mates
        _, alone = flow.loss_and_grad(z[i : i + 1], x[i : i + 1])
        torch.testing.assert_close(alone[0], grad[i], rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("schedule", ["constant", "exponential"])
def test_alpha_schedules_and_first_order_field(linear_problem, schedule):
    decoder, x = linear_problem(d=3, P=6, B=2)
    tau = 50.0
    flow = GradientFlow(decoder, loss="mse", alpha=0.7, alpha_schedule=schedule, tau=tau)
    for t in (0.0, 10.0, 37.5):
        expected = 0.7 * (math.exp(-2 * t / tau) if schedule == "exponential" else 1.0)
        assert flow.alpha_at(t) == pytest.approx(expected, rel=1e-14)
        assert float(flow.alpha_at(torch.tensor(t, dtype=torch.float64))) == pytest.approx(expected, rel=1e-14)
    z = torch.randn(2, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    _, grad = flow.loss_and_grad(z, x)
    t = torch.tensor(10.0, dtype=torch.float64)
    torch.testing.assert_close(flow.vector_field(t, z, x), -flow.alpha_at(10.0) * grad)


def test_second_order_state_and_field(linear_problem):
    decoder, x = linear_problem(d=3, P=6, B=2)
    flow = GradientFlow(decoder, loss="mse", order=2)
    z0 = torch.randn(2, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    state = flow.initial_state(z0)
    assert state.shape == (2, 6)
    torch.testing.assert_close(flow.position(state), z0)
    assert (state[:, 3:] == 0).all(), "the second-order flow starts at rest"
    velocity = torch.randn(2, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    state = torch.cat([z0, velocity], 1)
    t = torch.tensor(2.0, dtype=torch.float64)
    _, grad = flow.loss_and_grad(z0, x)
    field = flow.vector_field(t, state, x)
    torch.testing.assert_close(field[:, :3], velocity)
    torch.testing.assert_close(field[:, 3:], -3.0 / (2.0 + 1e-5) * velocity - grad)
    candidate = state + 1.0
    kept = flow.keep_or_restart(state, candidate, torch.tensor([False, True]))
    assert (kept[0, 3:] == 0).all(), "a rejected sample restarts at rest"
    torch.testing.assert_close(kept[0, :3], z0[0])
    assert torch.equal(kept[1], candidate[1]), "an accepted sample takes the candidate"


def test_second_order_amd_first_step_from_rest_moves_the_position(linear_problem):
    decoder, x = linear_problem(d=3, P=6, B=2)
    result = encode(decoder, x, loss="mse", order=2, tau=0.5, dt0=0.1, dt_max=0.1, record=True)
    assert result.steps.accepted[0].all()
    assert not torch.equal(result.trajectory.z[1], result.trajectory.z[0])


def _attempts_to_reach(result, target: torch.Tensor) -> list[int | None]:
    """Per sample: decoder evaluations (the initial one included) until an accepted loss <= target."""
    steps, out = result.steps, []
    for i in range(target.shape[0]):
        hit = (steps.active[:, i] & steps.accepted[:, i] & (steps.loss[:, i] <= target[i])).nonzero().flatten()
        out.append(int(steps.active[: int(hit[0]) + 1, i].sum()) + 1 if hit.numel() else None)
    return out


@pytest.mark.parametrize("acceptance, dt_max_times_L", [("per_sample", None), ("batch", None), ("per_sample", 2.0)])
def test_second_order_reaches_a_loss_in_fewer_evaluations_than_first_order(linear_problem, acceptance, dt_max_times_L):
    # an ill-conditioned quadratic: singular values 1..10, so the MSE Hessian's condition number is 100
    P = 6
    decoder, x = linear_problem(d=6, P=P, B=3, s_max=10.0, bias=False)
    L = 2.0 / P * 10.0**2  # the largest Hessian eigenvalue: dt0 = 1/L is a stable step
    z_star = decoder.least_squares_latent(x).detach()
    flow = GradientFlow(decoder, loss="mse")
    l_min = flow.loss(z_star, x)
    l_start = flow.loss(torch.zeros_like(z_star), x)
    target = l_min + 1e-4 * (l_start - l_min)
    kw = dict(loss="mse", tau=20.0, conv_tol=0.0, record=True, acceptance=acceptance, dt0=1.0 / L)
    if dt_max_times_L is not None:
        kw["dt_max"] = dt_max_times_L / L
    first = _attempts_to_reach(encode(decoder, x, order=1, **kw), target)
    second = _attempts_to_reach(encode(decoder, x, order=2, **kw), target)
    assert None not in first and None not in second, (first, second)
    assert sum(second) < sum(first), f"second order {second} vs first order {first} evaluations"
    assert all(s < f for s, f in zip(second, first)), (first, second)


def test_mlp_gradient_matches_finite_differences():
    torch.manual_seed(0)
    decoder = MLPDecoder(2, 5).double()
    flow = GradientFlow(decoder, loss="bce")
    x = torch.rand(3, 5, dtype=torch.double)
    z = torch.randn(3, 2, dtype=torch.double)
    _, grad = flow.loss_and_grad(z, x)
    eps = 1e-6
    for j in range(2):
        e = torch.zeros_like(z)
        e[:, j] = eps
        fd = (flow.loss(z + e, x) - flow.loss(z - e, x)) / (2 * eps)
        torch.testing.assert_close(grad[:, j], fd.detach(), rtol=1e-6, atol=1e-10)


def _fixed_step_error(order: int, lam: float, end: float, n_steps: int) -> float:
    """|z(end) - exact| after n_steps equal steps of GradientFlow.euler_step on l = lam z^2 / 2 from z0 = 1."""
    from gfe_viz.analysis.known_solutions import quadratic_decoder, quadratic_solution

    flow = GradientFlow(quadratic_decoder(lam), loss="mse", order=order)
    target = torch.zeros(1, 1, dtype=torch.float64)
    state = flow.initial_state(torch.ones(1, 1, dtype=torch.float64))
    dt = torch.full((1,), end / n_steps, dtype=torch.float64)
    t = torch.zeros(1, dtype=torch.float64)
    for _ in range(n_steps):
        _, grad = flow.loss_and_grad(flow.position(state), target)
        state, t = flow.euler_step(t, dt, state, grad), t + dt
    return abs(flow.position(state).item() - float(quadratic_solution(lam, end, order)))


@pytest.mark.parametrize("order", [1, 2])
def test_the_hand_written_steps_converge_at_first_order(order):
    """Halving dt halves the error at a fixed time: both steps (explicit Euler; exact damping then
    semi-implicit Euler) are first-order methods, checked against the closed-form solutions."""
    errors = [_fixed_step_error(order, lam=0.5, end=6.0, n_steps=n) for n in (200, 400, 800, 1600)]
    rates = [math.log2(a / b) for a, b in zip(errors, errors[1:])]
    assert all(0.9 < rate < 1.1 for rate in rates), (errors, rates)
    assert errors[-1] < 2e-3
