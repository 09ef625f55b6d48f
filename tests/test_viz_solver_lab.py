"""The AMD solver lab's figures and view: the four-panel AMD figure, stiffness and comparison figures."""

import numpy as np
import pytest

from gfe_viz import AMD_MNIST
from gfe_viz.analysis.solver_runs import compare_solvers, run_solver
from gfe_viz.analysis.stiffness import euler_scan
from gfe_viz.viz import solver_lab
from gfe_viz.viz.interactive import _as_json, control_choices
from gfe_viz.viz.solver_lab import amd_lab_figure, amd_lab_view, comparison_figure, stiffness_figure


def test_amd_lab_figure_marks_every_attempt(quadratic):
    decoder, x, _ = quadratic  # 2 / lambda_max = 0.6 < dt0: AMD must reject attempts
    run = run_solver(decoder, x, "amd", tau=50.0, loss="mse", amd=AMD_MNIST)
    figure = amd_lab_figure(run)
    names = [trace.name for trace in figure.data]
    assert names == [
        "accepted",
        "rejected",
        *[f"sample {i}" for i in range(2) for _ in range(2)],
        "batch mean",
        "NFE per sample",
    ]
    stats = run.result.stats
    assert stats.rejected.sum() > 0
    assert len(figure.data[0].x) == int(stats.accepted.sum()) and len(figure.data[1].x) == int(stats.rejected.sum())
    assert list(figure.data[-1].x) == stats.nfe.tolist()
    assert figure.data[3].x[-1] == pytest.approx(float(stats.nfe[0]))  # sample 0's loss-vs-NFE line ends at its NFE
    with pytest.raises(ValueError, match="needs a recorded AMD run, got solver 'euler'"):
        amd_lab_figure(run_solver(decoder, x, "euler", tau=4.0, dt=1.0, loss="mse"))


def test_amd_lab_view_sliders_resolve_the_batch(tiny_lab):
    decoder, x = tiny_lab
    view = amd_lab_view(decoder, x, tau=500.0, precompute=False)
    assert set(view.controls) == {"dt0", "dt_max", "shrink", "grow", "sigma", "acceptance"}
    before = view.figure
    view.controls["acceptance"].value = "batch"
    assert view.figure is not before
    assert view.summary["max_nfe"] == view.summary["mean_nfe"]  # one loop for all: the same NFE for every sample
    view.update(dt0=5.0, dt_max=100.0, acceptance="per_sample")
    dts = np.asarray(view.figure.data[0].y)
    assert dts.max() > 10 and dts[0] == pytest.approx(5.0)


def test_the_lab_view_renders_every_control_value_ahead(tiny_lab, monkeypatch):
    decoder, x = tiny_lab
    solves = []
    monkeypatch.setattr(solver_lab, "run_solver", lambda *a, **k: solves.append(k["amd"]) or run_solver(*a, **k))
    amd = AMD_MNIST.replace(shrink=0.75)  # a value off the grid joins the choices
    view = solver_lab.amd_lab_view(decoder, x, tau=500.0, amd=amd)
    choices = {name: control_choices(view, name) for name in view.controls}
    assert [value for _, value in choices["shrink"]] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.9]
    assert len(choices["dt0"]) == len(choices["dt_max"]) == 9 and len(choices["sigma"]) == 10
    one_each = 1 + sum(len(values) - 1 for values in choices.values())  # the defaults once, then each other value
    assert len(solves) == one_each
    fresh = amd_lab_figure(run_solver(decoder, x, "amd", tau=500.0, amd=amd, gradient="auto"))
    assert _as_json(view.figure.to_plotly_json()) == _as_json(fresh.to_plotly_json())  # the defaults are shown
    for name, values in choices.items():
        for _, value in values:
            view.update(**{name: value})
        view.reset()
    assert len(solves) == one_each  # every one came from the cache
    view.update(shrink=0.3, grow=1.5)
    assert len(solves) == one_each + 1 and solves[-1] == amd.replace(shrink=0.3, grow=1.5)


def test_the_lab_view_shows_the_figure_of_a_fresh_solve(tiny_lab):
    decoder, x = tiny_lab
    view = amd_lab_view(decoder, x, tau=500.0, precompute=False)
    view.update(shrink=0.3, grow=1.5)
    options = AMD_MNIST.replace(shrink=0.3, grow=1.5)
    fresh = amd_lab_figure(run_solver(decoder, x, "amd", tau=500.0, amd=options, gradient="auto"))
    assert _as_json(view.figure.to_plotly_json()) == _as_json(fresh.to_plotly_json())
    assert view.figure.layout.yaxis.type == "log" and view.figure.layout.xaxis2.type == "log"
    assert view.figure.layout.annotations[3].text == "NFE per sample"  # the subplot titles of the layout made once


def test_stiffness_figure_counts_the_unstable_samples(quadratic):
    decoder, x, eigenvalues = quadratic
    limit = 2.0 / float(eigenvalues[-1])
    figure = stiffness_figure(
        euler_scan(decoder, x, [0.5 * limit, 0.95 * limit, 1.05 * limit, 1.5 * limit], n_steps=60, loss="mse")
    )
    assert [trace.name for trace in figure.data] == [
        "final loss",
        "best loss along the way",
        "unstable samples",
        f"2/λ_max = {limit:.3g}",
    ]
    assert list(figure.data[2].y) == [0, 0, 2, 2] and figure.data[3].x == pytest.approx((limit, limit))
    counts_axis = figure.layout.yaxis2
    assert counts_axis.tickformat == "d" and counts_axis.dtick == 1  # whole counts, never 0.5 samples


def test_comparison_figure_draws_every_solver_and_the_target(tiny_lab):
    decoder, x = tiny_lab
    runs = compare_solvers(decoder, x, tau=100.0, euler_dt=2.0, rk4_dt=4.0, rtol=1e-4, atol=1e-6, n_save=51)
    target = float(runs[0].loss[-1].mean())
    figure = comparison_figure(runs)
    assert len(figure.data) == 5 and figure.data[-1].name == f"target: batch-mean loss {target:.5f}"
    assert figure.data[0].name.startswith("amd: ")
