"""The quadratic problem's closed forms for both flows, and the velocity the 3/t damping keeps."""

import numpy as np
import pytest
import torch

from gfe_viz.analysis.known_solutions import damping_factor, quadratic_decoder, quadratic_solution
from gfe_viz.analysis.solver_runs import compare_orders
from gfe_viz.flows import GradientFlow


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
    runs = compare_orders(
        decoder,
        torch.zeros(1, 1, dtype=torch.float64),
        tau=60.0,
        solver="dopri5",
        loss="mse",
        z0=start,
        rtol=1e-9,
        atol=1e-11,
        n_save=31,
    )
    for order, run in zip((1, 2), runs):
        t, z = run.result.trajectory.sample(0)
        assert np.allclose(z[:, 0].numpy(), quadratic_solution(lam, t.numpy(), order), atol=1e-5)


def test_damping_factor_is_what_the_second_order_step_keeps_of_the_velocity():
    flow = GradientFlow(quadratic_decoder(1.0), loss="mse", order=2)
    t, dt = torch.tensor([0.0, 2.0, 50.0], dtype=torch.float64), torch.tensor([1.0, 1.0, 5.0], dtype=torch.float64)
    state = torch.tensor([[0.0, 1.0]] * 3, dtype=torch.float64)
    stepped = flow.euler_step(t, dt, state, torch.zeros(3, 1, dtype=torch.float64))
    assert np.allclose(
        stepped[:, 1].numpy(), [damping_factor(0.0, 1.0), damping_factor(2.0, 1.0), damping_factor(50.0, 5.0)]
    )
    assert damping_factor(0.0, 1.0) < 1e-12 and damping_factor(2.0, 1.0) == pytest.approx((2 / 3) ** 3, rel=1e-5)
    with pytest.raises(ValueError, match="dt must be a finite number > 0, got 0"):
        damping_factor(1.0, 0)
