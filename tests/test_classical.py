"""Classical solvers (torchdiffeq's euler, rk4, dopri5) on the same flows: accuracy, counts, records."""

from __future__ import annotations

import pytest
import torch

from gfe_viz import Status, encode
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
