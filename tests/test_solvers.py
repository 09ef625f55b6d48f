"""Solver objects: the same solves as the string forms, results that carry their flow, checked settings."""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch

from gfe_viz import (
    AMD,
    AMD_FAST,
    AMD_MNIST,
    RK4,
    TRAINING_FAST,
    AMDOptions,
    Dopri5,
    Euler,
    GradientFlow,
    MLPDecoder,
    encode,
)
from gfe_viz.adjoint import full_adjoint_gradient
from gfe_viz.training import EncodeSettings

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SAME_SOLVES = [
    pytest.param(AMD(AMD_MNIST), dict(solver="amd", amd=AMD_MNIST), id="amd"),
    pytest.param(AMD(), dict(), id="amd-defaults"),
    pytest.param(AMD(AMD_MNIST, acceptance="batch"), dict(amd=AMD_MNIST, acceptance="batch"), id="amd-batch"),
    pytest.param(
        AMD(AMD_MNIST.replace(dt0=0.5, conv_tol=0.0)), dict(amd=AMD_MNIST, dt0=0.5, conv_tol=0.0), id="amd-fields"
    ),
    pytest.param(AMD(AMD_MNIST, check_every=3), dict(amd=AMD_MNIST, check_every=3), id="amd-chunks"),
    pytest.param(Euler(dt=0.5), dict(solver="euler", dt=0.5), id="euler"),
    pytest.param(Euler(), dict(solver="euler"), id="euler-defaults"),
    pytest.param(RK4(dt=0.5, n_save=11), dict(solver="rk4", dt=0.5, n_save=11), id="rk4"),
    pytest.param(
        Dopri5(rtol=1e-5, atol=1e-7, max_num_steps=40),
        dict(solver="dopri5", rtol=1e-5, atol=1e-7, max_num_steps=40),
        id="dopri5",
    ),
]


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(a.nan_to_num(nan=-7.0), b.nan_to_num(nan=-7.0))


@pytest.fixture
def curved():
    """A small float64 MLP decoder with BCE targets: AMD rejects steps, dopri5 adapts its step."""
    torch.manual_seed(0)
    decoder = MLPDecoder(2, 8).double()
    with torch.no_grad():
        decoder.net[-1].weight.mul_(8.0)
    x = torch.rand(4, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return decoder, x


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("solver, string_form", SAME_SOLVES)
def test_a_solver_object_gives_its_string_form_bit_for_bit(curved, solver, string_form, order):
    decoder, x = curved
    common = dict(z0="uniform", tau=40.0, order=order, record=True, alpha_schedule="exponential")
    with_object = encode(decoder, x, solver=solver, generator=torch.Generator().manual_seed(3), **common)
    by_name = encode(decoder, x, generator=torch.Generator().manual_seed(3), **common, **string_form)
    assert with_object.solver == by_name.solver == solver.name
    for name in ("z", "loss", "status", "state"):
        assert _same(getattr(with_object, name), getattr(by_name, name)), name
    for part in ("stats", "trajectory", "steps"):
        mine, theirs = getattr(with_object, part), getattr(by_name, part)
        assert (mine is None) == (theirs is None), part
        for field in dataclasses.fields(mine) if mine is not None else ():
            assert _same(getattr(mine, field.name), getattr(theirs, field.name)), f"{part}.{field.name}"


def test_the_training_preset_is_its_solver_object(curved):
    decoder, x = curved
    preset = encode(decoder, x, z0="uniform", tau=50.0, generator=torch.Generator().manual_seed(0), **TRAINING_FAST)
    objects = encode(
        decoder,
        x,
        solver=AMD(AMD_FAST),
        gradient="auto",
        z0="uniform",
        tau=50.0,
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.equal(preset.z, objects.z) and torch.equal(preset.stats.nfe, objects.stats.nfe)


@pytest.mark.parametrize(
    "solver",
    [AMD(AMD_MNIST), AMD(AMD_MNIST, acceptance="batch"), Euler(dt=0.5), RK4(dt=0.5), Dopri5(rtol=1e-6, atol=1e-8)],
    ids=["amd", "amd-batch", "euler", "rk4", "dopri5"],
)
def test_the_result_carries_the_flow_it_integrated_and_the_loss_at_every_row(curved, solver):
    decoder, x = curved
    result = encode(decoder, x, solver=solver, order=2, alpha=0.5, alpha_schedule="exponential", tau=30.0, record=True)
    flow = result.flow
    assert flow.decoder is decoder and flow.order == 2 and flow.alpha == 0.5 and flow.decay_rate == 2.0 / 30.0
    torch.testing.assert_close(flow.position(result.state), result.z, rtol=0, atol=0)
    traj = result.trajectory
    torch.testing.assert_close(traj.loss[-1], result.loss, rtol=1e-12, atol=0)
    assert torch.equal(traj.nfe[-1], result.stats.nfe)
    assert bool((traj.nfe.diff(dim=0) >= 0).all())
    rows = traj.accepted  # where the position is the solver's own state (a classical save, an AMD move)
    with torch.no_grad():
        expected = torch.stack([flow.loss(z, x) for z in traj.z])
    torch.testing.assert_close(traj.loss[rows], expected[rows], rtol=1e-10, atol=0)


def test_amd_rows_carry_the_loss_forward_and_only_ever_lower_it(curved_mlp):
    decoder, x, z0 = curved_mlp
    result = encode(decoder, x, solver=AMD(AMD_MNIST), z0=z0, tau=100.0, record=True)
    loss, moved = result.trajectory.loss, result.trajectory.accepted
    assert result.stats.rejected.sum() > 0, "the problem must reject steps to test the carried loss"
    assert bool((loss.diff(dim=0) <= 0).all())
    assert torch.equal(loss[1:][~moved[1:]], loss[:-1][~moved[1:]]), "a rejected attempt keeps the loss"


def test_the_adjoint_of_a_result_follows_the_path_the_solve_took(linear_problem):
    decoder, x = linear_problem(B=2)
    tau = 20.0
    result = encode(
        decoder,
        x,
        loss="mse",
        solver=AMD(AMD_MNIST.replace(conv_tol=0.0)),
        tau=tau,
        record=True,
        alpha=0.5,
        alpha_schedule="exponential",
    )
    _, from_result = full_adjoint_gradient(result.flow, x, result)
    solved = GradientFlow(decoder, loss="mse", alpha=0.5, alpha_schedule="exponential", tau=tau)
    _, expected = full_adjoint_gradient(solved, x, result)
    _, other_path = full_adjoint_gradient(GradientFlow(decoder, loss="mse", tau=tau), x, result)
    for mine, theirs in zip(from_result, expected):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=0)
    assert not all(torch.allclose(m, w) for m, w in zip(from_result, other_path)), "alpha(t) must matter here"


BAD_SOLVERS = [
    (lambda: Euler(dt=0.0), ValueError, ["dt", "0.0", "> 0"]),
    (lambda: RK4(dt=-0.5), ValueError, ["dt", "-0.5"]),
    (lambda: Euler(dt=float("nan")), ValueError, ["dt", "nan"]),
    (lambda: Euler(dt=0.1, n_save=1), ValueError, ["n_save", "1", ">= 2"]),
    (lambda: RK4(dt=0.1, n_save=2.5), ValueError, ["n_save", "2.5"]),
    (lambda: Dopri5(rtol=0.0), ValueError, ["rtol", "0.0"]),
    (lambda: Dopri5(atol=-1e-8), ValueError, ["atol", "-1e-08"]),
    (lambda: Dopri5(max_num_steps=0), ValueError, ["max_num_steps", "positive integer", "0"]),
    (lambda: Dopri5(max_num_steps=True), ValueError, ["max_num_steps", "True"]),
    (lambda: AMD("mnist"), TypeError, ["options", "AMDOptions", "'mnist'"]),
    (lambda: AMD(acceptance="global"), ValueError, ["acceptance", "'global'", "per_sample", "batch"]),
    (lambda: AMD(check_every=0), ValueError, ["check_every", "positive integer", "0"]),
    (lambda: AMD(cuda_graph="yes"), ValueError, ["cuda_graph", "'yes'", "True or False"]),
    (lambda: AMD(AMD_MNIST.replace(shrink=1.5)), ValueError, ["shrink", "1.5", "(0, 1)"]),
]


@pytest.mark.parametrize("make, error, needles", BAD_SOLVERS)
def test_a_bad_solver_setting_names_the_parameter_the_value_and_what_is_expected(make, error, needles):
    with pytest.raises(error) as info:
        make()
    for needle in needles:
        assert needle in str(info.value), f"{needle!r} not in {str(info.value)!r}"


@pytest.mark.parametrize(
    "kwargs, needles",
    [
        (dict(solver=Euler(dt=0.5), dt=0.25), ["Euler(dt=0.5", "dt=0.25", "solver object"]),
        (dict(solver=AMD(AMD_MNIST), acceptance="batch"), ["acceptance='batch'"]),
        (dict(solver=AMD(), amd=AMD_MNIST), ["amd=AMDOptions("]),
        (dict(solver=AMD(), check_every=4), ["check_every=4"]),
        (dict(solver=Dopri5(), dt0=2.0), ["dt0=2.0"]),
    ],
)
def test_string_form_settings_beside_a_solver_object_are_refused(linear_problem, kwargs, needles):
    decoder, x = linear_problem()
    with pytest.raises(TypeError) as info:
        encode(decoder, x, loss="mse", tau=1.0, **kwargs)
    for needle in needles:
        assert needle in str(info.value)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(solver="euler", rtol=1e-3), "rtol applies to ['dopri5'] only, got solver='euler'"),
        (dict(solver="dopri5", dt=0.1), "dt applies to ['euler', 'rk4'] only, got solver='dopri5'"),
    ],
)
def test_a_string_form_option_of_another_solver_is_refused(linear_problem, kwargs, message):
    decoder, x = linear_problem()
    with pytest.raises(TypeError, match=re.escape(message)):
        encode(decoder, x, loss="mse", tau=1.0, **kwargs)


def test_each_solver_counts_its_own_evaluations():
    times = torch.tensor([0.0, 0.5, 1.0, 2.0, 3.0], dtype=torch.float64)
    assert Euler(dt=0.5).nfe_at(times, [], 0).tolist() == [1, 2, 3, 5, 7]
    assert RK4(dt=1.0).nfe_at(times, [], 0).tolist() == [1, 5, 5, 9, 13]
    # dopri5: 2 evaluations choose the first step, 6 per attempt, a rejected attempt included
    log = [(0.0, 1.0, True), (1.0, 4.0, False), (1.0, 2.0, True)]
    assert Dopri5().nfe_at(times[:4], log, 0).tolist() == [3, 9, 9, 21]
    assert Dopri5().nfe_at(times, [], 5).tolist() == [5] * 5


def test_encode_settings_give_the_solver_object():
    assert EncodeSettings().kwargs(check_every=4)["solver"] == AMD(AMD_MNIST, "per_sample", check_every=4)
    assert EncodeSettings(acceptance="batch", amd=AMDOptions()).solver_object() == AMD(AMDOptions(), "batch")
    assert EncodeSettings(solver="rk4").kwargs(check_every=4)["solver"] == RK4()
    with pytest.raises(ValueError, match="solver must be one of"):
        EncodeSettings(solver="adams").kwargs()
