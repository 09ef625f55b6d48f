"""The AMD solver lab: loss histories of every solver, the four-panel AMD figure, stiffness, comparisons."""

import numpy as np
import pytest
import torch

from gfe_viz import AMD_MNIST
from gfe_viz.models import LinearDecoder, MLPDecoder
from gfe_viz.viz.interactive import _as_json
from gfe_viz.analysis.solver_runs import amd_summary, compare_solvers, nfe_to_target, run_solver
from gfe_viz.analysis.stiffness import euler_scan, euler_stability_limit, hessian_eigenvalues
from gfe_viz.viz.solver_lab import amd_lab_figure, amd_lab_view, comparison_figure, stiffness_figure


@pytest.fixture
def quadratic():
    """MSE of a linear decoder: Hessian (2/P) W^T W, the same for every sample."""
    weight = torch.tensor([[2.0, 0.0], [0.0, 0.3], [1.0, 0.2]], dtype=torch.float64)
    decoder = LinearDecoder(weight)
    x = torch.tensor([[1.0, -1.0, 0.5], [0.2, 0.4, -0.3]], dtype=torch.float64)
    return decoder, x, torch.linalg.eigvalsh(2 / 3 * weight.T @ weight)


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return MLPDecoder(2, 16, (1, 4, 4)), torch.rand(4, 1, 4, 4, generator=torch.Generator().manual_seed(1))


def test_amd_history_matches_the_result(tiny):
    decoder, x = tiny
    run = run_solver(decoder, x, "amd", tau=300.0, amd=AMD_MNIST)
    result = run.result
    assert run.loss.shape == run.nfe.shape == run.t.shape == (len(result.steps) + 1, 4)
    assert np.allclose(run.loss[-1], result.loss.numpy(), rtol=1e-6)
    assert np.array_equal(run.nfe[-1], result.stats.nfe.numpy()) and np.all(run.nfe[0] == 1)
    assert np.allclose(run.t[-1], result.stats.t.numpy())
    assert np.all(np.diff(run.loss, axis=0) <= 0)  # AMD accepts a step only when the loss drops
    mean_nfe, mean_loss = run.mean_curve()
    assert mean_nfe[-1] == pytest.approx(result.stats.nfe.double().mean().item())
    assert run.nfe_to_reach(float(mean_loss[-1])) <= mean_nfe[-1] and run.nfe_to_reach(0.0) is None


@pytest.mark.parametrize("solver, options", [("euler", {"dt": 2.0}), ("rk4", {"dt": 4.0}),
                                              ("dopri5", {"rtol": 1e-4, "atol": 1e-6})])
def test_classical_histories_count_evaluations(tiny, solver, options):
    decoder, x = tiny
    run = run_solver(decoder, x, solver, tau=40.0, n_save=11, **options)
    assert run.name == solver and run.loss.shape == (11, 4)
    assert np.allclose(run.loss[-1], run.result.loss.numpy(), rtol=1e-5)
    assert np.all(run.nfe[-1] == run.result.stats.nfe.numpy())
    assert np.all(np.diff(run.nfe[:, 0]) >= 0)
    if solver == "euler":
        assert list(run.nfe[:, 0]) == [1 + 2 * k for k in range(11)]  # saved every 4 time units = 2 steps


def test_run_solver_needs_a_step_for_fixed_step_solvers(tiny):
    decoder, x = tiny
    with pytest.raises(ValueError, match="solver 'rk4' needs a step: pass dt"):
        run_solver(decoder, x, "rk4", tau=10.0)


def test_amd_lab_figure_marks_every_attempt(quadratic):
    decoder, x, _ = quadratic  # 2 / lambda_max = 0.6 < dt0: AMD must reject attempts
    run = run_solver(decoder, x, "amd", tau=50.0, loss="mse", amd=AMD_MNIST)
    figure = amd_lab_figure(run)
    names = [trace.name for trace in figure.data]
    assert names == ["accepted", "rejected", *[f"sample {i}" for i in range(2) for _ in range(2)], "batch mean",
                     "NFE per sample"]
    stats = run.result.stats
    assert stats.rejected.sum() > 0
    assert len(figure.data[0].x) == int(stats.accepted.sum()) and len(figure.data[1].x) == int(stats.rejected.sum())
    assert list(figure.data[-1].x) == stats.nfe.tolist()
    assert figure.data[3].x[-1] == pytest.approx(float(stats.nfe[0]))  # sample 0's loss-vs-NFE line ends at its NFE
    with pytest.raises(ValueError, match="needs a recorded AMD run, got solver 'euler'"):
        amd_lab_figure(run_solver(decoder, x, "euler", tau=4.0, dt=1.0, loss="mse"))


def test_amd_summary_counts(tiny):
    decoder, x = tiny
    result = run_solver(decoder, x, "amd", tau=100.0).result
    summary = amd_summary(result)
    assert summary["accepted"] + summary["rejected"] == int((result.stats.nfe - 1).sum())
    assert summary["converged"] + summary["reached_tau"] + summary["step_underflow"] + summary["non_finite"] == 4


def test_amd_lab_view_sliders_resolve_the_batch(tiny):
    decoder, x = tiny
    view = amd_lab_view(decoder, x, tau=500.0)
    assert set(view.controls) == {"dt0", "dt_max", "shrink", "grow", "sigma", "acceptance"}
    before = view.figure
    view.controls["acceptance"].value = "batch"
    assert view.figure is not before
    assert view.summary["max_nfe"] == view.summary["mean_nfe"]  # one loop for all: the same NFE for every sample
    view.update(dt0=5.0, dt_max=100.0, acceptance="per_sample")
    dts = np.asarray(view.figure.data[0].y)
    assert dts.max() > 10 and dts[0] == pytest.approx(5.0)


def test_the_lab_view_shows_the_figure_of_a_fresh_solve(tiny):
    decoder, x = tiny
    view = amd_lab_view(decoder, x, tau=500.0)
    view.update(shrink=0.3, grow=1.5)
    options = AMD_MNIST.replace(shrink=0.3, grow=1.5)
    fresh = amd_lab_figure(run_solver(decoder, x, "amd", tau=500.0, amd=options, gradient="auto"))
    assert _as_json(view.figure.to_plotly_json()) == _as_json(fresh.to_plotly_json())
    assert view.figure.layout.yaxis.type == "log" and view.figure.layout.xaxis2.type == "log"
    assert view.figure.layout.annotations[3].text == "NFE per sample"  # the subplot titles of the layout made once


def test_hessian_eigenvalues_of_a_quadratic(quadratic):
    decoder, x, eigenvalues = quadratic
    found = hessian_eigenvalues(decoder, x, torch.randn(2, 2, dtype=torch.float64), loss="mse")
    assert torch.allclose(found, eigenvalues.expand(2, 2), rtol=1e-10)
    limit = euler_stability_limit(found, alpha=2.0)
    assert torch.allclose(limit, 1.0 / eigenvalues[-1].expand(2))


def test_euler_scan_blows_up_just_above_two_over_lambda_max(quadratic):
    decoder, x, eigenvalues = quadratic
    limit = 2.0 / float(eigenvalues[-1])
    scan = euler_scan(decoder, x, [0.5 * limit, 0.95 * limit, 1.05 * limit, 1.5 * limit], n_steps=60, loss="mse")
    assert np.allclose(scan.limit, limit)
    assert scan.unstable().tolist() == [[False, False], [False, False], [True, True], [True, True]]
    assert scan.blow_up_dt() == pytest.approx(1.05 * limit)
    figure = stiffness_figure(scan)
    assert [trace.name for trace in figure.data] == ["final loss", "best loss along the way", "unstable samples",
                                                     f"2/λ_max = {limit:.3g}"]
    assert list(figure.data[2].y) == [0, 0, 2, 2] and figure.data[3].x == pytest.approx((limit, limit))
    counts_axis = figure.layout.yaxis2
    assert counts_axis.tickformat == "d" and counts_axis.dtick == 1  # whole counts, never 0.5 samples
    with pytest.raises(ValueError, match="dts must be a non-empty list of finite steps > 0"):
        euler_scan(decoder, x, [0.1, -1.0], loss="mse")


def test_comparison_reports_nfe_to_the_amd_loss(tiny):
    decoder, x = tiny
    runs = compare_solvers(decoder, x, tau=100.0, euler_dt=2.0, rk4_dt=4.0, rtol=1e-4, atol=1e-6, n_save=51)
    assert [run.name for run in runs] == ["amd", "euler dt=2", "rk4 dt=4", "dopri5 rtol=0.0001"]
    needed = nfe_to_target(runs)
    target = float(runs[0].loss[-1].mean())
    assert needed["amd"] <= runs[0].result.stats.nfe.double().mean().item()
    for run in runs[1:]:
        if needed[run.name] is not None:
            nfe, loss = run.mean_curve()
            assert loss[nfe == needed[run.name]][0] <= target and np.all(loss[nfe < needed[run.name]] > target)
    figure = comparison_figure(runs)
    assert len(figure.data) == 5 and figure.data[-1].name == f"target: batch-mean loss {target:.5f}"
    assert figure.data[0].name.startswith("amd: ")
    with pytest.raises(ValueError, match="no run is an AMD run"):
        nfe_to_target(runs[1:])
