"""Classical solvers (torchdiffeq's euler, rk4, dopri5) on the same flows: accuracy, counts, records."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gfe_viz import Status, encode
from gfe_viz.classical import DT_FLOOR
from gfe_viz.flows import GradientFlow

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("solver, per_step", [("euler", 1), ("rk4", 4)])
def test_fixed_step_counts_and_time(linear_problem, solver, per_step):
    decoder, x = linear_problem(B=3)
    result = encode(decoder, x, loss="mse", solver=solver, dt=0.5, tau=10.0)
    n_steps = 20
    assert result.stats.nfe.tolist() == [per_step * n_steps + 1] * 3
    assert result.stats.accepted.tolist() == [n_steps] * 3
    assert result.stats.rejected.tolist() == [0] * 3
    assert result.stats.forced.tolist() == [0] * 3
    torch.testing.assert_close(result.stats.t, torch.full((3,), 10.0, dtype=torch.float64))
    assert result.status.tolist() == [int(Status.REACHED_TAU)] * 3
    assert result.solver == solver


def test_euler_matches_a_hand_written_euler_loop(linear_problem):
    decoder, x = linear_problem(B=3)
    flow = GradientFlow(decoder, loss="mse")
    z = torch.zeros(3, 3, dtype=torch.float64)
    for _ in range(40):
        _, grad = flow.loss_and_grad(z, x)
        z = z - 0.25 * grad
    result = encode(decoder, x, loss="mse", solver="euler", dt=0.25, tau=10.0)
    torch.testing.assert_close(result.z, z, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(result.loss, flow.loss(z, x))


def test_dopri5_tolerances_trade_accuracy_for_evaluations(linear_problem):
    decoder, x = linear_problem(B=3)
    # exact solution of the linear first-order flow at t = 1: z* + expm(-H t)(z0 - z*)
    W = decoder.weight.detach()
    H = 2.0 / 6 * W.T @ W
    z_star = decoder.least_squares_latent(x).detach()
    exact = z_star + (-z_star) @ torch.linalg.matrix_exp(-H * 1.0).T
    loose = encode(decoder, x, loss="mse", solver="dopri5", tau=1.0, rtol=1e-3, atol=1e-5, record=True)
    tight = encode(decoder, x, loss="mse", solver="dopri5", tau=1.0, rtol=1e-10, atol=1e-12, record=True)
    assert (tight.z - exact).abs().max() < 1e-8
    assert (tight.z - exact).abs().max() < (loose.z - exact).abs().max()
    assert tight.stats.nfe[0] > loose.stats.nfe[0]
    steps = tight.steps
    assert steps is not None and steps.accepted.any()
    assert int(steps.accepted[:, 0].sum()) == int(tight.stats.accepted[0])


def test_record_gives_the_saved_trajectory(linear_problem):
    decoder, x = linear_problem(B=2)
    result = encode(decoder, x, loss="mse", solver="rk4", dt=0.1, tau=2.0, n_save=21, record=True)
    traj = result.trajectory
    assert traj.z.shape == (21, 2, 3) and traj.t.shape == (21, 2)
    torch.testing.assert_close(traj.t[:, 0], torch.linspace(0, 2.0, 21, dtype=torch.float64))
    torch.testing.assert_close(traj.z[-1], result.z)
    torch.testing.assert_close(traj.z[0], torch.zeros(2, 3, dtype=torch.float64))
    times, positions = traj.sample(1)
    assert positions.shape == (21, 3) and times.shape == (21,)
    flow = GradientFlow(decoder, loss="mse")
    losses = torch.stack([flow.loss(z, x) for z in traj.z])
    assert (losses[1:] <= losses[:-1] + 1e-15).all(), "a stable gradient flow never increases the loss"


class Identity(nn.Module):
    latent_dim = 2

    def forward(self, z):
        return z


def _l1(output, target):
    """|D(z) - x|: its flow slides along the kink at z = x, which dopri5 resolves with ever more steps."""
    return (output - target).abs().sum(1)


def test_dopri5_stops_at_max_num_steps_with_the_last_accepted_state():
    x = torch.tensor([[0.3, -0.2], [1.0, 0.5]], dtype=torch.float64)
    result = encode(Identity(), x, loss=_l1, solver="dopri5", tau=10.0, max_num_steps=50, record=True)
    assert result.status.tolist() == [int(Status.STEP_LIMIT)] * 2
    assert (result.stats.accepted + result.stats.rejected).tolist() == [50, 50]
    assert (result.stats.nfe <= 6 * 50 + 3).all(), "six evaluations per attempted step, and no more"
    stop = float(result.stats.t[0])
    assert 0 < stop < 10.0 and torch.equal(result.stats.t, torch.full((2,), stop, dtype=torch.float64))
    traj = result.trajectory
    after = traj.t[:, 0] > stop
    assert after.any() and not traj.accepted[after].any(), "nothing is integrated after the stop"
    assert torch.equal(traj.z[after], result.z.expand(int(after.sum()), -1, -1))
    torch.testing.assert_close(result.loss, _l1(result.z, x))
    before = traj.z[~after][-1]  # the last save before the stop lies on the path towards the stop
    assert (_l1(result.z, x) <= _l1(before, x) + 1e-12).all()


def _cliff(output, target):
    """A loss whose slope jumps from 1 to -1e12 at output = target: at the jump dopri5's step underflows."""
    gap = output - target
    return torch.where(gap < 0, -1e12 * gap, gap).sum(1)


def test_dopri5_step_underflow_is_a_status_not_an_assertion():
    x = torch.tensor([[0.5, 0.5]], dtype=torch.float64)
    result = encode(Identity(), x, loss=_cliff, solver="dopri5", z0=torch.ones(1, 2, dtype=torch.float64), tau=10.0)
    assert result.status.tolist() == [int(Status.STEP_UNDERFLOW)]
    assert (result.stats.accepted + result.stats.rejected < 10_000).all(), "it stops at the floor, not the limit"
    # dz/dt = -1 until z reaches x at t = 0.5, where the step shrinks below DT_FLOOR * tau and the solve stops
    torch.testing.assert_close(result.stats.t, torch.tensor([0.5], dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(result.z, x, atol=1e-6, rtol=0)
    torch.testing.assert_close(result.loss, _cliff(result.z, x))
    assert DT_FLOOR * 10.0 < 1e-6


def test_dopri5_max_num_steps_is_checked():
    x = torch.zeros(1, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="max_num_steps must be a positive integer, got 0"):
        encode(Identity(), x, loss="mse", solver="dopri5", max_num_steps=0)
    with pytest.raises(TypeError, match=r"max_num_steps applies to \['dopri5'\] only, got solver='rk4'"):
        encode(Identity(), x, loss="mse", solver="rk4", max_num_steps=10)


class NaNBeyondHalf(nn.Module):
    """D(z) = z, except NaN for every sample with z[0] > 0.5: the flow towards x[0] = 1 runs into it."""

    latent_dim = 2

    def forward(self, z):
        return torch.where(z[:, :1] > 0.5, torch.full_like(z, float("nan")), z)


@pytest.mark.parametrize("solver, options", [("euler", {"dt": 0.1}), ("rk4", {"dt": 0.1}), ("dopri5", {})])
def test_classical_non_finite_keeps_the_last_state_with_a_finite_loss(solver, options):
    x = torch.tensor([[1.0, 0.2], [0.25, -0.5]], dtype=torch.float64)
    result = encode(NaNBeyondHalf(), x, loss="mse", solver=solver, tau=20.0, n_save=201, record=True, **options)
    assert result.status.tolist() == [int(Status.NON_FINITE), int(Status.REACHED_TAU)]
    assert torch.isfinite(result.loss).all(), "z is a state whose loss is finite, as with AMD"
    assert float(result.z[0, 0]) <= 0.5
    flow = GradientFlow(NaNBeyondHalf(), loss="mse")
    losses = torch.stack([flow.loss(z, x) for z in result.trajectory.z])[:, 0]
    last_finite = int(torch.isfinite(losses).nonzero().max())
    assert last_finite > 0 and float(result.z[0, 0]) > 0.4, "the sample moved towards x before it failed"
    torch.testing.assert_close(result.z[0], result.trajectory.z[last_finite, 0], rtol=0, atol=0)
    torch.testing.assert_close(result.stats.t[0], result.trajectory.t[last_finite, 0])
    torch.testing.assert_close(result.z[1], x[1], atol=1e-4, rtol=0)
