"""First versus second order: closed forms on a quadratic, the damping factor, the figures and the view."""

import numpy as np
import pytest
import torch

from gfe_viz import AMD_MNIST
from gfe_viz.flows import GradientFlow
from gfe_viz.models import MLPDecoder
from gfe_viz.viz.landscape import latent_limits, loss_landscape
from gfe_viz.viz.orders import (compare_orders, damping_factor, damping_figure, orders_figure, orders_summary,
                                orders_view, quadratic_decoder, quadratic_runs, quadratic_solution)


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return MLPDecoder(2, 16, (1, 4, 4)), torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(1))


def test_quadratic_decoder_gives_half_lambda_z_squared():
    decoder = quadratic_decoder(0.3)
    z = torch.tensor([[2.0]], dtype=torch.float64)
    loss = GradientFlow(decoder, loss="mse").loss(z, torch.zeros(1, 1, dtype=torch.float64)).detach()
    assert float(loss) == pytest.approx(0.3 * 4 / 2)


def test_closed_forms_solve_their_odes():
    lam, h = 0.5, 1e-3
    t = np.linspace(0.5, 20.0, 50)
    first = quadratic_solution(lam, t, 1, z0=2.0)
    assert np.allclose(first, 2.0 * np.exp(-lam * t))
    z = lambda s: quadratic_solution(lam, s, 2, z0=2.0)  # noqa: E731
    velocity = (z(t + h) - z(t - h)) / (2 * h)
    acceleration = (z(t + h) - 2 * z(t) + z(t - h)) / h**2
    assert np.allclose(acceleration + 3 / t * velocity + lam * z(t), 0.0, atol=1e-5)
    assert quadratic_solution(lam, [0.0], 2, z0=2.0)[0] == 2.0
    assert (z(np.array([h])) - 2.0) / h == pytest.approx(0.0, abs=1e-3)  # starts at rest
    with pytest.raises(ValueError, match="order must be 1 or 2, got 3"):
        quadratic_solution(lam, t, 3)
    with pytest.raises(ValueError, match="lam must be a finite number > 0, got -1"):
        quadratic_solution(-1, t, 1)


def test_library_second_order_flow_follows_the_bessel_solution():
    lam = 0.04
    decoder = quadratic_decoder(lam)
    start = torch.ones(1, 1, dtype=torch.float64)
    runs = compare_orders(decoder, torch.zeros(1, 1, dtype=torch.float64), tau=60.0, solver="dopri5", loss="mse",
                          z0=start, rtol=1e-9, atol=1e-11, n_save=31)
    for order, run in zip((1, 2), runs):
        t, z = run.result.trajectory.sample(0)
        assert np.allclose(z[:, 0].numpy(), quadratic_solution(lam, t.numpy(), order), atol=1e-5)


def test_damping_factor_is_what_the_second_order_step_keeps_of_the_velocity():
    flow = GradientFlow(quadratic_decoder(1.0), loss="mse", order=2)
    t, dt = torch.tensor([0.0, 2.0, 50.0], dtype=torch.float64), torch.tensor([1.0, 1.0, 5.0], dtype=torch.float64)
    state = torch.tensor([[0.0, 1.0]] * 3, dtype=torch.float64)
    stepped = flow.euler_step(t, dt, state, torch.zeros(3, 1, dtype=torch.float64))
    assert np.allclose(stepped[:, 1].numpy(), [damping_factor(0.0, 1.0), damping_factor(2.0, 1.0),
                                               damping_factor(50.0, 5.0)])
    assert damping_factor(0.0, 1.0) < 1e-12 and damping_factor(2.0, 1.0) == pytest.approx((2 / 3) ** 3, rel=1e-5)
    with pytest.raises(ValueError, match="dt must be a finite number > 0, got 0"):
        damping_factor(1.0, 0)


def test_amd_on_the_quadratic_reaches_the_minimum_faster_with_momentum():
    first, second = quadratic_runs(0.01, 400.0)
    assert first.name == "first order" and second.name == "second order"
    assert abs(float(second.result.z[0, 0])) < abs(float(first.result.z[0, 0]))
    no_stop = AMD_MNIST.replace(conv_tol=0.0)
    figure = damping_figure(lam=0.01, tau=400.0, amd=no_stop, dts=(1.0, 10.0))
    assert [trace.name for trace in figure.data] == ["first order, exact", "first order, AMD", "second order, exact",
                                                     "second order, AMD", "dt = 1", "dt = 10"]
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
        "landscape", "first order", "first order: z0 → z*", "first order: loss",
        "second order", "second order: z0 → z*", "second order: loss"]
    assert figure.data[2].x[-1] == pytest.approx(float(runs[0].result.z[1, 0]), abs=1e-6)
    assert figure.data[6].x[-1] == pytest.approx(float(runs[1].result.stats.nfe[1]))
    summary = orders_summary(runs)
    assert summary["second order rejected"] == int(runs[1].result.stats.rejected.sum())
    assert summary["first order loss"] == pytest.approx(float(runs[0].result.loss.double().mean()))


def test_orders_view_updates_with_its_controls(tiny):
    decoder, images = tiny
    view = orders_view(decoder, images, tau=100.0, resolution=7)
    assert set(view.controls) == {"image", "tau", "dt_max"}
    loss_before = view.summary["first order loss"]
    view.controls["image"].value = 2
    expected = compare_orders(decoder, images[2:3], tau=100.0)
    assert view.summary["first order loss"] == pytest.approx(float(expected[0].result.loss[0]))
    assert view.summary["first order loss"] != loss_before
    view.update(dt_max=1.0)
    assert view.summary["first order nfe"] > expected[0].result.stats.nfe.item()  # dt capped at 1: more steps
