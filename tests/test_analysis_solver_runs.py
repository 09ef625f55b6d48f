"""Solver runs for the lab: loss histories of every solver, AMD's counts, stiffness numbers, NFE to a target."""

import numpy as np
import pytest
import torch

from gfe_viz import AMD_MNIST
from gfe_viz.analysis.solver_runs import amd_summary, compare_solvers, nfe_to_target, run_solver
from gfe_viz.analysis.stiffness import euler_scan, euler_stability_limit, hessian_eigenvalues


def test_amd_history_matches_the_result(tiny_lab):
    decoder, x = tiny_lab
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


@pytest.mark.parametrize(
    "solver, options", [("euler", {"dt": 2.0}), ("rk4", {"dt": 4.0}), ("dopri5", {"rtol": 1e-4, "atol": 1e-6})]
)
def test_classical_histories_count_evaluations(tiny_lab, solver, options):
    decoder, x = tiny_lab
    run = run_solver(decoder, x, solver, tau=40.0, n_save=11, **options)
    assert run.name == solver and run.loss.shape == (11, 4)
    assert np.allclose(run.loss[-1], run.result.loss.numpy(), rtol=1e-5)
    assert np.all(run.nfe[-1] == run.result.stats.nfe.numpy())
    assert np.all(np.diff(run.nfe[:, 0]) >= 0)
    if solver == "euler":
        assert list(run.nfe[:, 0]) == [1 + 2 * k for k in range(11)]  # saved every 4 time units = 2 steps


def test_run_solver_needs_a_step_for_fixed_step_solvers(tiny_lab):
    decoder, x = tiny_lab
    with pytest.raises(ValueError, match="solver 'rk4' needs a step: pass dt"):
        run_solver(decoder, x, "rk4", tau=10.0)


def test_amd_summary_counts(tiny_lab):
    decoder, x = tiny_lab
    result = run_solver(decoder, x, "amd", tau=100.0).result
    summary = amd_summary(result)
    assert summary["accepted"] + summary["rejected"] == int((result.stats.nfe - 1).sum())
    assert summary["converged"] + summary["reached_tau"] + summary["step_underflow"] + summary["non_finite"] == 4


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
    with pytest.raises(ValueError, match="dts must be a non-empty list of finite steps > 0"):
        euler_scan(decoder, x, [0.1, -1.0], loss="mse")


def test_comparison_reports_nfe_to_the_amd_loss(tiny_lab):
    decoder, x = tiny_lab
    runs = compare_solvers(decoder, x, tau=100.0, euler_dt=2.0, rk4_dt=4.0, rtol=1e-4, atol=1e-6, n_save=51)
    assert [run.name for run in runs] == ["amd", "euler dt=2", "rk4 dt=4", "dopri5 rtol=0.0001"]
    needed = nfe_to_target(runs)
    target = float(runs[0].loss[-1].mean())
    assert needed["amd"] <= runs[0].result.stats.nfe.double().mean().item()
    for run in runs[1:]:
        if needed[run.name] is not None:
            nfe, loss = run.mean_curve()
            assert loss[nfe == needed[run.name]][0] <= target and np.all(loss[nfe < needed[run.name]] > target)
    with pytest.raises(ValueError, match="no run is an AMD run"):
        nfe_to_target(runs[1:])
