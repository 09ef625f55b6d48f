"""First versus second order: the runs of both flows, their figures and the notebook-3 view."""

import numpy as np
import pytest

from gfe_viz import AMD_MNIST
from gfe_viz.analysis.known_solutions import quadratic_runs
from gfe_viz.analysis.landscapes import latent_limits, loss_landscape
from gfe_viz.analysis.solver_runs import compare_orders, orders_summary
from gfe_viz.viz.orders import damping_figure, orders_figure, orders_view


def test_amd_on_the_quadratic_reaches_the_minimum_faster_with_momentum():
    first, second = quadratic_runs(0.01, 400.0)
    assert first.name == "first order" and second.name == "second order"
    assert abs(float(second.result.z[0, 0])) < abs(float(first.result.z[0, 0]))
    no_stop = AMD_MNIST.replace(conv_tol=0.0)
    figure = damping_figure(lam=0.01, tau=400.0, amd=no_stop, dts=(1.0, 10.0))
    assert [trace.name for trace in figure.data] == [
        "first order, exact",
        "first order, AMD",
        "second order, exact",
        "second order, AMD",
        "dt = 1",
        "dt = 10",
    ]
    t, z = quadratic_runs(0.01, 400.0, no_stop)[1].result.trajectory.sample(0)
    assert float(t[-1]) >= 400.0
    assert np.allclose(figure.data[3].x, t.numpy(), rtol=1e-6) and np.allclose(figure.data[3].y, z[:, 0], atol=1e-6)


def test_orders_figure_and_summary(tiny):
    decoder, images = tiny
    runs = compare_orders(decoder, images, tau=200.0)
    assert [run.name for run in runs] == ["first order", "second order"]
    assert runs[0].result.state.shape[1] == 2 and runs[1].result.state.shape[1] == 4
    land = loss_landscape(decoder, images[1:2], latent_limits(runs[0].result.z.numpy()), resolution=7)
    figure = orders_figure(land, runs, sample=1)
    assert [trace.name for trace in figure.data] == [
        "landscape",
        "first order",
        "first order: z0 → z*",
        "first order: loss",
        "second order",
        "second order: z0 → z*",
        "second order: loss",
    ]
    assert figure.data[2].x[-1] == pytest.approx(float(runs[0].result.z[1, 0]), abs=1e-6)
    assert figure.data[6].x[-1] == pytest.approx(float(runs[1].result.stats.nfe[1]))
    summary = orders_summary(runs)
    assert summary["second order rejected"] == int(runs[1].result.stats.rejected.sum())
    assert summary["first order loss"] == pytest.approx(float(runs[0].result.loss.double().mean()))


def test_orders_view_updates_with_its_controls(tiny):
    decoder, images = tiny
    view = orders_view(decoder, images, tau=100.0, resolution=7, precompute=False)
    assert set(view.controls) == {"image", "tau", "dt_max"}
    loss_before = view.summary["first order loss"]
    view.controls["image"].value = 2
    expected = compare_orders(decoder, images[2:3], tau=100.0)
    assert view.summary["first order loss"] == pytest.approx(float(expected[0].result.loss[0]))
    assert view.summary["first order loss"] != loss_before
    view.update(dt_max=1.0)
    assert view.summary["first order nfe"] > expected[0].result.stats.nfe.item()  # dt capped at 1: more steps


def test_orders_view_keeps_one_landscape_per_image_while_the_paths_fit_it(tiny, monkeypatch):
    import gfe_viz.viz.orders as orders

    decoder, images = tiny
    real, boxes = orders.loss_landscape, []
    monkeypatch.setattr(
        orders, "loss_landscape", lambda *args, **kwargs: boxes.append(args[2]) or real(*args, **kwargs)
    )
    view = orders_view(decoder, images, tau=1000.0, resolution=7, precompute=False)
    default = np.array(view.figure.data[0].z)
    view.update(tau=10.0)  # shorter paths: inside the default box
    assert len(boxes) == 1 and np.array_equal(np.array(view.figure.data[0].z), default)
    paths = np.concatenate([np.stack([view.figure.data[k].x, view.figure.data[k].y], 1) for k in (1, 4)])
    low, high = paths.min(0), paths.max(0)
    z1, z2 = view.figure.data[0].x, view.figure.data[0].y
    assert z1[0] <= low[0] and high[0] <= z1[-1] and z2[0] <= low[1] and high[1] <= z2[-1]


def test_orders_view_prerenders_images_and_horizons_as_a_fresh_render_draws_them(tiny, monkeypatch):
    import gfe_viz.analysis.solver_runs as solver_runs

    decoder, images = tiny
    view = orders_view(decoder, images, tau=1000.0, resolution=7, precompute=False)
    view.prerender("image")
    view.prerender("tau", [10.0, 100.0])
    real, solves = solver_runs.encode, []
    monkeypatch.setattr(
        solver_runs, "encode", lambda *args, **kwargs: solves.append(kwargs["order"]) or real(*args, **kwargs)
    )
    fresh = orders_view(decoder, images, tau=1000.0, resolution=7, precompute=False)
    for setting in ({"image": 2}, {"tau": 100.0}):
        solves.clear()
        view.update(**setting)
        assert solves == [], setting
        fresh.update(**setting)
        assert fresh.output.outputs[0] == view.output.outputs[0] and fresh.summary == view.summary
        view.reset()
        fresh.reset()
