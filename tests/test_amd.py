"""The AMD solver's rules (arXiv 2412.00864; `gfe_viz.amd` states them).

Checked attempt by attempt on recorded solves.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from gfe_viz import AMD_MNIST, AMDOptions, LinearDecoder, Status, encode
from gfe_viz.amd import mean_gradient_weights
from gfe_viz.flows import GradientFlow

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- helpers ---------------------------------------------------------------------------------


def replay_first_order(flow: GradientFlow, x: torch.Tensor, result):
    """Recompute every attempt of a recorded first-order AMD solve from its trajectory.

    Returns (A, B) tensors: the loss at the position before the attempt, the loss at the candidate
    z1 = z0 - dt alpha(t) grad l(z0), ||alpha(t + dt) grad l(z1)||^2 and ||alpha(t) grad l(z0)||^2.
    """
    steps, traj = result.steps, result.trajectory
    A, B = steps.t.shape
    d = traj.z.shape[2]
    z_prev = traj.z[:-1].reshape(A * B, d).to(x.dtype)
    xs = x.unsqueeze(0).expand(A, *x.shape).reshape(A * B, *x.shape[1:])
    t = torch.nan_to_num(steps.t).reshape(-1).to(x.dtype)
    dt = steps.dt.reshape(-1).to(x.dtype)
    l_prev, g_prev = flow.loss_and_grad(z_prev, xs)
    candidate = z_prev - (dt * flow.alpha_at(t)).unsqueeze(1) * g_prev
    l_cand, g_cand = flow.loss_and_grad(candidate, xs)
    alpha1 = flow.alpha_at(t + dt)
    force = g_cand.square().sum(1) * alpha1 * alpha1
    force0 = g_prev.square().sum(1) * flow.alpha_at(t) ** 2
    return l_prev.reshape(A, B), l_cand.reshape(A, B), force.reshape(A, B), force0.reshape(A, B)


def previous_accepted_loss(flow: GradientFlow, x: torch.Tensor, z0: torch.Tensor, steps) -> torch.Tensor:
    """(A, B): for every attempt, the loss of the last accepted state before it, rebuilt from steps.loss."""
    prev = flow.loss(z0, x).detach()
    rows = []
    for k in range(len(steps)):
        rows.append(prev.clone())
        prev = torch.where(steps.active[k] & steps.accepted[k], steps.loss[k], prev)
    return torch.stack(rows)


def check_step_control(result, opts: AMDOptions, tau: float, batch: bool) -> None:
    """Replay dt, t, failures and stopping per sample from the recorded attempts and compare.

    dt: dt0 first; shrink after a rejection; min(max(dt0, grow dt), dt_max) after an acceptance.
    t: + dt on an accepted step, + dt + fail_jump on a forced one (dt below shrink**max_shrinks).
    Stop: when t >= tau, or when |mean(numpy.gradient(last 5 recorded losses))| < conv_tol, the
    losses being recorded on accepted steps once t >= conv_after * tau (batch mode: batch means).
    """
    steps, traj, stats = result.steps, result.trajectory, result.stats
    active, accepted = steps.active.tolist(), steps.accepted.tolist()
    dts, ts, losses = steps.dt.tolist(), steps.t.tolist(), steps.loss.tolist()
    traj_t = traj.t.tolist()
    A, B = steps.t.shape
    for i in range(B):
        rows = [k for k in range(A) if active[k][i]]
        assert len(rows) == int(stats.nfe[i]) - 1, "one recorded attempt per decoder evaluation after the first"
        assert rows == list(range(len(rows))), "a sample is active from the first attempt until it stops"
        assert rows, "at least one attempt"
        dt, t, history, n_forced = opts.dt0, 0.0, [], 0
        for n, k in enumerate(rows):
            assert math.isclose(dts[k][i], dt, rel_tol=1e-12), f"sample {i}, attempt {k}: dt"
            assert math.isclose(ts[k][i], t, rel_tol=1e-12, abs_tol=1e-12), f"sample {i}, attempt {k}: t"
            stop, forced = False, dt < opts.dt_floor
            if accepted[k][i]:
                t = t + dt + (opts.fail_jump if forced else 0.0)
                n_forced += forced
                dt = min(max(opts.dt0, opts.grow * dt), opts.dt_max)
                if t >= opts.conv_after * tau:
                    if batch:
                        history.append(float(np.mean([losses[k][j] for j in range(B) if active[k][j]])))
                    else:
                        history.append(losses[k][i])
                converged = len(history) >= 5 and abs(np.gradient(np.array(history[-5:])).mean()) < opts.conv_tol
                stop = converged or t >= tau
            else:
                assert not forced, "a step at the dt floor is taken whatever the loss (unless non-finite)"
                dt = dt * opts.shrink
            assert math.isclose(traj_t[k + 1][i], t, rel_tol=1e-12, abs_tol=1e-12)
            if stop:
                assert n == len(rows) - 1, f"sample {i} should have stopped after attempt {k}"
                expected = Status.CONVERGED if converged else (Status.STEP_UNDERFLOW if forced else Status.REACHED_TAU)
                assert int(result.status[i]) == expected
        assert stop, f"sample {i} stopped after attempt {rows[-1]} although no stopping rule held"
        assert math.isclose(float(stats.t[i]), t, rel_tol=1e-12, abs_tol=1e-12)
        assert int(stats.forced[i]) == n_forced


def weighted_squares(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """s * ||output[:, :-1] - target[:, :-1]||^2 with the per-sample stiffness s in target's last column."""
    return target[:, -1] * (output[:, :-1] - target[:, :-1]).square().sum(1)


def easy_and_stiff():
    """D(z) = [z, 0]; sample 0 has curvature 0.1 (any dt <= 1 decreases), sample 1 curvature 100 (dt < 0.02)."""
    weight = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    x = torch.tensor([[1.0, -1.0, 0.05], [0.5, 0.5, 50.0]], dtype=torch.float64)
    return LinearDecoder(weight), x


class CountingDecoder(nn.Module):
    """Wraps a decoder and records the batch size of every forward call."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner, self.latent_dim, self.rows = inner, inner.latent_dim, []

    def forward(self, z):
        self.rows.append(z.shape[0])
        return self.inner(z)


# --- options ---------------------------------------------------------------------------------


def test_defaults_and_mnist_preset_match_the_reference():
    assert AMDOptions() == AMDOptions(
        dt0=1.0,
        dt_max=10.0,
        shrink=0.75,
        grow=1.1,
        sigma=1e-5,
        max_shrinks=50,
        conv_tol=1e-9,
        conv_after=0.1,
        fail_jump=100.0,
    )
    assert AMD_MNIST == AMDOptions(
        dt0=1.0,
        dt_max=10.0,
        shrink=0.5,
        grow=1.1,
        sigma=1e-5,
        max_shrinks=20,
        conv_tol=1e-5,
        conv_after=0.02,
        fail_jump=10.0,
    )
    assert AMD_MNIST.dt_floor == 0.5**20
    assert AMDOptions().replace(dt0=0.5).dt0 == 0.5
    with pytest.raises(TypeError, match="bogus"):
        AMDOptions().replace(bogus=1)


def test_encode_uses_preset_and_keyword_overrides(linear_problem):
    decoder, x = linear_problem(B=2)
    preset = encode(decoder, x, loss="mse", tau=30.0, amd=AMD_MNIST, record=True)
    check_step_control(preset, AMD_MNIST, 30.0, batch=False)
    changed = AMD_MNIST.replace(dt0=0.25, dt_max=0.5)
    override = encode(decoder, x, loss="mse", tau=30.0, amd=AMD_MNIST, dt0=0.25, dt_max=0.5, record=True)
    check_step_control(override, changed, 30.0, batch=False)
    assert float(override.steps.dt[0, 0]) == 0.25


# --- the convergence test ----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mean_gradient_weights_give_numpy_gradient_mean(dtype):
    rows = torch.randn(50, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    rows[:10] *= 1e-6
    rows[10:20] = torch.cumsum(rows[10:20].abs(), 1)  # monotone histories, like a decreasing loss
    expected = np.array([np.gradient(r).mean() for r in rows.numpy()])
    history = rows.to(dtype)
    got = (history @ mean_gradient_weights(history)).double().numpy()
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol * np.abs(rows.numpy()).max())


# --- sufficient decrease, attempt by attempt -------------------------------------------------


@pytest.mark.parametrize(
    "acceptance, schedule, sigma",
    [
        ("per_sample", "constant", 1e-5),
        ("batch", "constant", 1e-5),
        ("per_sample", "exponential", 1e-5),
        ("batch", "exponential", 1e-5),
        # sigma * dt_max = 0.4: the right-hand side decides many attempts, and the gradient at the
        # candidate (not at the start, as in the textbook Armijo rule) must be the one used
        ("per_sample", "constant", 0.04),
        ("batch", "constant", 0.04),
        ("per_sample", "exponential", 0.04),
    ],
)
def test_accepted_steps_satisfy_sufficient_decrease_and_rejected_do_not(curved_mlp, acceptance, schedule, sigma):
    decoder, x, z0 = curved_mlp
    tau, opts = 20.0, AMDOptions(sigma=sigma)
    result = encode(decoder, x, z0=z0, tau=tau, acceptance=acceptance, alpha_schedule=schedule, amd=opts, record=True)
    flow = GradientFlow(decoder, loss="bce", alpha_schedule=schedule, tau=tau)
    steps = result.steps
    active = steps.active
    l_prev, l_cand, force, force_at_start = replay_first_order(flow, x, result)

    # the replay reproduces the solver's candidates, and the previous accepted loss is the loss at z_prev
    torch.testing.assert_close(l_cand[active], steps.loss[active], rtol=1e-10, atol=1e-13)
    prev = previous_accepted_loss(flow, x, z0, steps)
    torch.testing.assert_close(l_prev[active], prev[active], rtol=1e-10, atol=1e-13)

    decrease = prev - steps.loss
    rhs = opts.sigma * steps.dt * opts.dt_max * force
    slack = 1e-9 * rhs.abs() + 1e-300
    forced = active & (steps.dt < opts.dt_floor)
    normal_accepted = active & steps.accepted & ~forced
    rejected = active & ~steps.accepted
    assert normal_accepted.sum() > 20 and rejected.sum() > 20, "the problem must exercise both outcomes"

    passes = decrease >= rhs - slack
    fails = ~(decrease >= rhs + slack)
    if sigma > 0.01:
        textbook = decrease >= opts.sigma * steps.dt * opts.dt_max * force_at_start
        assert (active & ~forced & (passes != textbook)).sum() >= 3, "the two rules must disagree somewhere"
    assert passes[normal_accepted].all(), "an accepted step violates l(z0) - l(z1) >= sigma dt dt_max ||f(z1)||^2"
    if acceptance == "per_sample":
        assert fails[rejected].all(), "a rejected step satisfies the sufficient-decrease inequality"
    else:
        for k in range(len(steps)):
            row = active[k]
            if (row & ~steps.accepted[k]).any():
                assert not steps.accepted[k][row].any(), "batch mode: a step is accepted for all or none"
                assert fails[k][row].any(), f"batch attempt {k} rejected although every sample passes"
            elif not forced[k][row].any():
                assert passes[k][row].all()
    assert int(((active & steps.accepted & forced).sum(0) != result.stats.forced).sum()) == 0
    check_step_control(result, opts, tau, batch=acceptance == "batch")


@pytest.mark.parametrize("acceptance", ["per_sample", "batch"])
def test_second_order_accepted_steps_decrease_the_position_loss(curved_mlp, acceptance):
    decoder, x, z0 = curved_mlp
    tau, opts = 20.0, AMDOptions()
    result = encode(decoder, x, z0=z0, order=2, tau=tau, acceptance=acceptance, record=True)
    flow = GradientFlow(decoder, loss="bce", order=2, tau=tau)
    steps, traj = result.steps, result.trajectory
    A, B = steps.t.shape
    new_pos = traj.z[1:]
    l_new, g_new = flow.loss_and_grad(new_pos.reshape(A * B, -1), x.repeat(A, 1))
    l_new, force = l_new.reshape(A, B), g_new.square().sum(1).reshape(A, B)
    accepted = steps.active & steps.accepted & (steps.dt >= opts.dt_floor)
    rejected = steps.active & ~steps.accepted
    assert accepted.sum() > 10 and rejected.sum() > 10
    torch.testing.assert_close(l_new[accepted], steps.loss[accepted], rtol=1e-10, atol=1e-13)
    prev = previous_accepted_loss(flow, x, z0, steps)
    rhs = opts.sigma * steps.dt * opts.dt_max * force
    assert ((prev - steps.loss) >= rhs * (1 - 1e-9))[accepted].all()
    assert torch.equal(traj.z[1:][rejected], traj.z[:-1][rejected]), "a rejected attempt must not move z"
    check_step_control(result, opts, tau, batch=acceptance == "batch")


# --- dt floor, forced steps and the time jump ----------------------------------------------------


@pytest.mark.parametrize("acceptance", ["per_sample", "batch"])
def test_failure_forces_a_floor_step_and_jumps_time(linear_problem, acceptance):
    # sigma * dt_max = 10 > 1: no step can pass the test, so every cycle shrinks dt below the floor
    decoder, x = linear_problem(B=3)
    opts = AMDOptions(sigma=1.0, shrink=0.5, max_shrinks=3, fail_jump=100.0)  # floor 0.125
    tau = 250.0
    result = encode(decoder, x, loss="mse", tau=tau, acceptance=acceptance, record=True, amd=opts)
    # per cycle: dt 1, 0.5, 0.25, 0.125 rejected, 0.0625 forced; t: 100.0625, 200.125, 300.1875 >= tau
    assert result.stats.forced.tolist() == [3] * 3
    assert result.stats.accepted.tolist() == [3] * 3
    assert result.stats.rejected.tolist() == [12] * 3
    assert result.stats.nfe.tolist() == [16] * 3
    assert result.status.tolist() == [int(Status.STEP_UNDERFLOW)] * 3
    torch.testing.assert_close(result.stats.t, torch.full((3,), 3 * (0.0625 + 100.0), dtype=torch.float64))
    assert result.steps.dt[:5, 0].tolist() == [1.0, 0.5, 0.25, 0.125, 0.0625]
    assert result.steps.accepted[:5, 0].tolist() == [False] * 4 + [True]
    flow = GradientFlow(decoder, loss="mse")
    assert (result.loss < flow.loss(torch.zeros(3, 3, dtype=torch.float64), x)).all(), "forced steps still move z"
    assert not torch.equal(result.z, torch.zeros_like(result.z))
    check_step_control(result, opts, tau, batch=acceptance == "batch")


def test_rejections_shrink_dt_and_acceptances_grow_it_up_to_dt_max(linear_problem):
    # a stable, easy problem: dt grows by 1.1 from dt0 up to the cap and then stays there
    decoder, x = linear_problem(B=2)
    opts = AMDOptions(dt0=0.01, dt_max=0.05, conv_tol=0.0)
    result = encode(decoder, x, loss="mse", tau=2.0, amd=opts, record=True)
    dts = result.steps.dt[:, 0].tolist()
    assert dts[:3] == pytest.approx([0.01, 0.011, 0.0121], rel=1e-12)
    assert max(dts) == pytest.approx(0.05, rel=1e-12)
    assert result.steps.accepted.all()
    check_step_control(result, opts, 2.0, batch=False)


@pytest.mark.parametrize("acceptance", ["per_sample", "batch"])
def test_convergence_test_stops_the_solve(curved_mlp, acceptance):
    decoder, x, z0 = curved_mlp
    tau = 30.0
    opts = AMDOptions(conv_tol=1e-6)
    result = encode(decoder, x, z0=z0, tau=tau, acceptance=acceptance, amd=opts, record=True)
    assert (result.status == int(Status.CONVERGED)).all()
    assert (result.stats.t < tau).all()
    check_step_control(result, opts, tau, batch=acceptance == "batch")


@pytest.mark.parametrize("acceptance", ["per_sample", "batch"])
def test_convergence_test_waits_until_conv_after_tau(linear_problem, acceptance):
    # the loss flattens (|mean gradient| < 1e-3) near t = 4, but the test may only start at t = 10
    decoder, x = linear_problem(B=3)
    tau, opts = 40.0, AMDOptions(conv_tol=1e-3, conv_after=0.25, dt_max=1.0)
    result = encode(decoder, x, loss="mse", tau=tau, acceptance=acceptance, record=True, amd=opts)
    assert (result.status == int(Status.CONVERGED)).all()
    assert (result.stats.t >= 0.25 * tau).all() and (result.stats.t < 0.25 * tau + 6.0).all()
    check_step_control(result, opts, tau, batch=acceptance == "batch")
    early = encode(decoder, x, loss="mse", tau=tau, acceptance=acceptance, amd=opts.replace(conv_after=0.0))
    assert (early.stats.t < 0.25 * tau).all() and (early.status == int(Status.CONVERGED)).all()


# --- batch versus per-sample acceptance ------------------------------------------------------------


def test_batch_mode_one_failing_sample_rejects_the_step_for_all():
    decoder, x = easy_and_stiff()
    opts = AMDOptions(dt0=0.1, dt_max=1.0)
    kw = dict(loss=weighted_squares, z0="zeros", tau=0.5, amd=opts, record=True)
    batch = encode(decoder, x, acceptance="batch", **kw)
    steps = batch.steps
    assert steps.active.all()
    assert torch.equal(steps.dt[:, 0], steps.dt[:, 1]), "batch mode: one dt for the whole batch"
    assert torch.equal(steps.accepted[:, 0], steps.accepted[:, 1]), "batch mode: accepted for all or none"
    assert batch.stats.nfe[0] == batch.stats.nfe[1]

    # the easy sample alone would pass the first attempt: it is rejected because of the stiff one
    flow = GradientFlow(decoder, loss=weighted_squares)
    l_prev, l_cand, force, _ = replay_first_order(flow, x, batch)
    sigma_dtmax = opts.sigma * opts.dt_max
    easy_passes = (l_prev[:, 0] - l_cand[:, 0]) >= sigma_dtmax * steps.dt[:, 0] * force[:, 0]
    stiff_passes = (l_prev[:, 1] - l_cand[:, 1]) >= sigma_dtmax * steps.dt[:, 1] * force[:, 1]
    assert not steps.accepted[0, 0] and easy_passes[0] and not stiff_passes[0]
    blocked = ~steps.accepted[:, 0] & easy_passes
    assert blocked.sum() >= 10, "many attempts rejected for the easy sample although it passed"
    assert torch.equal(steps.accepted[:, 0], easy_passes & stiff_passes)
    check_step_control(batch, opts, 0.5, batch=True)

    per_sample = encode(decoder, x, acceptance="per_sample", **kw)
    assert per_sample.steps.accepted[0].tolist() == [True, False]
    assert per_sample.stats.rejected[0] == 0
    assert per_sample.stats.nfe[0] < per_sample.stats.nfe[1]
    alone = encode(decoder, x[:1], acceptance="batch", **kw)
    assert alone.stats.nfe[0] < batch.stats.nfe[0], "the stiff batch-mate must have cost the easy sample attempts"
    check_step_control(per_sample, opts, 0.5, batch=False)


@pytest.mark.parametrize("order", [1, 2])
def test_per_sample_latent_does_not_depend_on_batchmates(curved_mlp, order):
    decoder, x, z0 = curved_mlp
    kw = dict(tau=30.0, conv_tol=1e-6, order=order, acceptance="per_sample")
    full = encode(decoder, x, z0=z0, **kw)
    assert full.z.dtype == torch.float64
    assert len(set(full.stats.nfe.tolist())) >= 3, "samples must finish after different numbers of attempts"
    for subset in ([0], [3, 0], [4, 2, 0, 1]):
        part = encode(decoder, x[subset], z0=z0[subset], **kw)
        for j, i in enumerate(subset):
            assert (part.z[j] - full.z[i]).abs().max() <= 1e-6, f"sample {i} moved when encoded with {subset}"
            assert int(part.status[j]) == int(full.status[i])
            assert int(part.stats.nfe[j]) == int(full.stats.nfe[i])


@pytest.mark.parametrize("acceptance", ["per_sample", "batch"])
def test_finished_samples_cost_no_decoder_evaluations(curved_mlp, acceptance):
    decoder, x, z0 = curved_mlp
    counting = CountingDecoder(decoder)
    result = encode(counting, x, z0=z0, tau=30.0, conv_tol=1e-6, acceptance=acceptance, record=True)
    nfe = result.stats.nfe
    assert len(counting.rows) == int(nfe.max())
    if acceptance == "per_sample":
        assert nfe.min() < nfe.max(), "finished samples must have smaller nfe than the others"
        assert sum(counting.rows) == int(nfe.sum()), "decoder rows evaluated must equal the summed per-sample nfe"
        assert counting.rows[-1] < x.shape[0]
        last = result.steps.active.sum(0)  # finished samples are inactive in later attempts
        assert torch.equal(last, nfe - 1)
    else:
        assert (nfe == nfe[0]).all()
        assert sum(counting.rows) == x.shape[0] * int(nfe[0])


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("acceptance", ["per_sample", "batch"])
def test_stats_invariants(curved_mlp, acceptance, order):
    decoder, x, z0 = curved_mlp
    result = encode(decoder, x, z0=z0, tau=20.0, order=order, acceptance=acceptance, record=True)
    stats, steps = result.stats, result.steps
    assert torch.equal(stats.nfe, stats.accepted + stats.rejected + 1)
    assert torch.equal(stats.accepted, (steps.active & steps.accepted).sum(0))
    assert torch.equal(stats.rejected, (steps.active & ~steps.accepted).sum(0))
    assert (stats.rejected >= 0).all() and (stats.forced <= stats.accepted).all()
    assert set(result.status.tolist()) <= {int(s) for s in Status}
    assert result.status.dtype == torch.long
    flow = GradientFlow(decoder, loss="bce", order=order)
    torch.testing.assert_close(result.loss, flow.loss(result.z, x).detach(), rtol=1e-12, atol=1e-14)
    # the trajectory's accepted positions are the new states, ending at z
    for i in range(x.shape[0]):
        times, positions = result.trajectory.sample(i)
        assert positions.shape[0] == int(stats.accepted[i]) + 1
        torch.testing.assert_close(positions[-1], result.z[i])
        assert (times[1:] > times[:-1]).all()
    if order == 2:
        assert result.state.shape == (x.shape[0], 4)
        torch.testing.assert_close(result.state[:, :2], result.z)
