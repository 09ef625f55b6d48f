"""Bad input gets a clear error naming the parameter and the value; diverging flows end as NON_FINITE."""

from __future__ import annotations

import math
import re
import warnings

import pytest
import torch
from torch import nn

from gfe_viz import AMDOptions, LinearDecoder, Status, encode

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _x_with(x: torch.Tensor, index: tuple[int, int], value: float) -> torch.Tensor:
    x = x.clone()
    x[index] = value
    return x


# (case id, function of (decoder, x) -> kwargs for encode, strings the message must contain)
BAD_INPUTS = [
    ("x-nan", lambda d, x: dict(x=_x_with(x, (1, 2), float("nan"))), ["x", "finite", "[1]"]),
    ("x-inf", lambda d, x: dict(x=_x_with(x, (3, 0), float("inf"))), ["x", "finite", "[3]"]),
    ("x-not-a-tensor", lambda d, x: dict(x=x.tolist()), ["x", "list"]),
    ("x-integer", lambda d, x: dict(x=x.long()), ["x", "torch.int64"]),
    ("x-empty-batch", lambda d, x: dict(x=x[:0]), ["x", "(0, 6)"]),
    ("x-scalar", lambda d, x: dict(x=x[0, 0]), ["x", "()"]),
    ("x-wrong-size-for-decoder", lambda d, x: dict(x=x[:, :5]), ["decoder output", "(4, 6)", "(4, 5)"]),
    ("z0-wrong-latent-dim", lambda d, x: dict(z0=torch.zeros(4, 2, dtype=x.dtype)), ["z0", "(4, 2)", "(4, 3)"]),
    ("z0-wrong-batch", lambda d, x: dict(z0=torch.zeros(3, 3, dtype=x.dtype)), ["z0", "(3, 3)", "(4, 3)"]),
    ("z0-one-dim", lambda d, x: dict(z0=torch.zeros(3, dtype=x.dtype)), ["z0", "(3,)"]),
    ("z0-nan", lambda d, x: dict(z0=torch.full((4, 3), float("nan"), dtype=x.dtype)), ["z0", "finite"]),
    ("z0-integer", lambda d, x: dict(z0=torch.zeros(4, 3, dtype=torch.long)), ["z0", "torch.int64"]),
    ("z0-unknown-name", lambda d, x: dict(z0="ones"), ["z0", "'ones'", "zeros", "uniform"]),
    ("tau-zero", lambda d, x: dict(tau=0.0), ["tau", "0.0"]),
    ("tau-negative", lambda d, x: dict(tau=-5), ["tau", "-5"]),
    ("tau-nan", lambda d, x: dict(tau=float("nan")), ["tau", "nan"]),
    ("tau-inf", lambda d, x: dict(tau=math.inf), ["tau", "inf"]),
    ("dt0-zero", lambda d, x: dict(dt0=0.0), ["dt0", "0.0"]),
    ("dt0-negative", lambda d, x: dict(dt0=-1.0), ["dt0", "-1.0"]),
    ("dt_max-below-dt0", lambda d, x: dict(dt0=2.0, dt_max=1.5), ["dt_max", "1.5", "dt0"]),
    ("dt_max-zero", lambda d, x: dict(dt_max=0.0), ["dt_max", "0.0"]),
    ("shrink-zero", lambda d, x: dict(shrink=0.0), ["shrink", "0.0", "(0, 1)"]),
    ("shrink-one", lambda d, x: dict(shrink=1.0), ["shrink", "1.0", "(0, 1)"]),
    ("shrink-above-one", lambda d, x: dict(shrink=1.5), ["shrink", "1.5"]),
    ("shrink-negative", lambda d, x: dict(shrink=-0.5), ["shrink", "-0.5"]),
    ("grow-below-one", lambda d, x: dict(grow=0.9), ["grow", "0.9"]),
    ("sigma-negative", lambda d, x: dict(sigma=-1e-3), ["sigma", "-0.001"]),
    ("max_shrinks-zero", lambda d, x: dict(max_shrinks=0), ["max_shrinks", "0"]),
    ("max_shrinks-float", lambda d, x: dict(max_shrinks=2.5), ["max_shrinks", "2.5"]),
    ("conv_after-above-one", lambda d, x: dict(conv_after=1.5), ["conv_after", "1.5"]),
    ("conv_tol-negative", lambda d, x: dict(conv_tol=-1.0), ["conv_tol", "-1.0"]),
    ("fail_jump-negative", lambda d, x: dict(fail_jump=-1.0), ["fail_jump", "-1.0"]),
    ("solver-unknown", lambda d, x: dict(solver="adams"), ["solver", "'adams'", "amd", "rk4"]),
    ("acceptance-unknown", lambda d, x: dict(acceptance="global"), ["acceptance", "'global'", "per_sample", "batch"]),
    ("loss-unknown", lambda d, x: dict(loss="l1"), ["loss", "'l1'", "bce", "mse"]),
    ("order-three", lambda d, x: dict(order=3), ["order", "3"]),
    ("alpha-zero", lambda d, x: dict(alpha=0.0), ["alpha", "0.0"]),
    ("alpha_schedule-unknown", lambda d, x: dict(alpha_schedule="linear"), ["alpha_schedule", "'linear'"]),
    ("amd-unknown-option", lambda d, x: dict(foo=1), ["foo", "dt0"]),
    ("amd-classical-option", lambda d, x: dict(dt=0.1), ["'dt'"]),
    ("rk4-amd-option", lambda d, x: dict(solver="rk4", dt0=1.0), ["dt0", "rk4"]),
    ("rk4-unknown-option", lambda d, x: dict(solver="rk4", bar=2), ["bar"]),
    ("rk4-dt-zero", lambda d, x: dict(solver="rk4", dt=0.0), ["dt", "0.0"]),
    ("euler-dt-negative", lambda d, x: dict(solver="euler", dt=-0.1), ["dt", "-0.1"]),
    ("dopri5-rtol-negative", lambda d, x: dict(solver="dopri5", rtol=-1e-6), ["rtol", "-1e-06"]),
    ("dopri5-atol-zero", lambda d, x: dict(solver="dopri5", atol=0.0), ["atol", "0.0"]),
    ("rk4-n_save-one", lambda d, x: dict(solver="rk4", dt=0.1, n_save=1), ["n_save", "1"]),
    ("rk4-n_save-zero", lambda d, x: dict(solver="rk4", dt=0.1, n_save=0), ["n_save", "0"]),
    ("amd-preset-not-options", lambda d, x: dict(amd="mnist"), ["amd", "'mnist'"]),
    ("decoder-not-a-module", lambda d, x: dict(decoder=lambda z: z), ["decoder", "function"]),
    (
        "loss-batch-mean",
        lambda d, x: dict(loss=lambda o, t: (o - t).square().mean()),
        ["loss", "shape (4,)", "got shape ()", "averages over the batch"],
    ),
    ("loss-per-pixel", lambda d, x: dict(loss=lambda o, t: (o - t).square()), ["loss", "shape (4,)", "(4, 6)"]),
    (
        "loss-detached",
        lambda d, x: dict(loss=lambda o, t: (o - t).square().mean(1).detach()),
        ["loss", "depends on the decoder output"],
    ),
    ("loss-integer", lambda d, x: dict(loss=lambda o, t: (o > t).sum(1)), ["loss", "torch.int64"]),
    ("loss-not-a-tensor", lambda d, x: dict(loss=lambda o, t: 0.5), ["loss", "float"]),
    (
        "loss-batch-mean-dopri5",
        lambda d, x: dict(solver="dopri5", loss=lambda o, t: (o - t).square().mean()),
        ["loss", "got shape ()"],
    ),
    (
        "bce-targets-out-of-range",
        lambda d, x: dict(loss="bce", x=torch.linspace(-0.5, 1.5, 24, dtype=x.dtype).reshape(4, 6)),
        ["x", "[0, 1]", "'bce'", "[-0.5, 1.5]"],
    ),
]


@pytest.mark.parametrize("make_kwargs, needles", [pytest.param(m, n, id=i) for i, m, n in BAD_INPUTS])
def test_bad_input_error_names_parameter_and_value(linear_problem, make_kwargs, needles):
    decoder, x = linear_problem(d=3, P=6, B=4)
    kwargs = dict(decoder=decoder, x=x, loss="mse", tau=1.0)
    kwargs.update(make_kwargs(decoder, x))
    with pytest.raises((ValueError, TypeError)) as info:
        encode(**kwargs)
    message = str(info.value)
    for needle in needles:
        if needle == "x":
            assert re.search(r"\bx\b", message), f"message does not name x: {message!r}"
        else:
            assert needle in message, f"{needle!r} not in {message!r}"


@pytest.mark.parametrize(
    "field, value",
    [
        ("dt0", -1.0),
        ("dt_max", 0.5),
        ("shrink", 2.0),
        ("grow", 0.5),
        ("sigma", -1.0),
        ("max_shrinks", -3),
        ("conv_after", -0.1),
    ],
)
def test_amd_options_validate_on_construction(field, value):
    with pytest.raises(ValueError, match=re.escape(field)) as info:
        AMDOptions(**{field: value})
    assert repr(value) in str(info.value)


# --- diverging flows end as NON_FINITE, never as a crash or a silent NaN --------------------------------


class NaNRightHalf(nn.Module):
    """D(z) = z, except NaN for every sample with z[0] > 0."""

    latent_dim = 2

    def forward(self, z):
        return torch.where(z[:, :1] > 0, torch.full_like(z, float("nan")), z)


class InfWhenMarked(nn.Module):
    """D(z) = z, except +inf for every sample with z[1] > 5 (a sample can start there)."""

    latent_dim = 2

    def forward(self, z):
        return torch.where(z[:, 1:] > 5, torch.full_like(z, float("inf")), z)


def _assert_no_silent_nan(result):
    assert torch.isfinite(result.z).all(), "z must keep the last finite state"
    assert set(result.status.tolist()) <= {int(s) for s in Status}
    bad_loss = ~torch.isfinite(result.loss)
    assert (result.status[bad_loss] == int(Status.NON_FINITE)).all(), "a non-finite loss must be flagged"


@pytest.mark.parametrize("acceptance", ["per_sample", "batch"])
def test_amd_decoder_nan_on_the_way_gives_non_finite_and_keeps_last_z(acceptance):
    x = torch.tensor([[1.0, 0.5], [-1.0, 0.5], [-0.5, -0.25]], dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = encode(NaNRightHalf(), x, loss="mse", z0="zeros", tau=300.0, acceptance=acceptance)
    _assert_no_silent_nan(result)
    assert result.status.tolist()[0] == int(Status.NON_FINITE)
    assert (result.status[1:] != int(Status.NON_FINITE)).all()
    assert torch.equal(result.z[0], torch.zeros(2, dtype=torch.float64)), "every step of sample 0 was NaN"
    assert torch.isfinite(result.loss).all()
    torch.testing.assert_close(result.z[1:], x[1:], atol=1e-4, rtol=0)
    assert torch.equal(result.stats.nfe, result.stats.accepted + result.stats.rejected + 1)


@pytest.mark.parametrize(
    "solver, options",
    [("amd", {}), ("amd", {"acceptance": "batch"}), ("euler", {"dt": 0.5}), ("rk4", {"dt": 0.5}), ("dopri5", {})],
)
def test_decoder_inf_for_one_sample_leaves_the_others_unharmed(solver, options):
    x = torch.tensor([[0.3, 0.2], [-1.0, 0.5], [0.5, -0.5]], dtype=torch.float64)
    z0 = torch.tensor([[0.0, 10.0], [0.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    result = encode(InfWhenMarked(), x, loss="mse", z0=z0, tau=30.0, solver=solver, **options)
    _assert_no_silent_nan(result)
    assert result.status.tolist()[0] == int(Status.NON_FINITE)
    assert (result.status[1:] != int(Status.NON_FINITE)).all()
    assert torch.equal(result.z[0], z0[0])
    torch.testing.assert_close(result.z[1:], x[1:], atol=1e-4, rtol=0)


@pytest.mark.parametrize("solver", ["euler", "rk4"])
def test_fixed_step_beyond_stability_gives_non_finite_with_the_last_finite_loss_state(linear_problem, solver):
    # singular values 1..10: the largest Hessian eigenvalue is 2/6 * 100, stable euler dt < 0.06
    decoder, x = linear_problem(d=3, P=6, B=3, s_max=10.0, bias=False)
    x[1] = 0.0  # z = 0 is this sample's minimum: its gradient is exactly zero and it never moves
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = encode(decoder, x, loss="mse", solver=solver, dt=1.0, tau=400.0, n_save=401, record=True)
    _assert_no_silent_nan(result)
    assert result.status.tolist() == [int(Status.NON_FINITE), int(Status.REACHED_TAU), int(Status.NON_FINITE)]
    assert torch.equal(result.z[1], torch.zeros(3, dtype=torch.float64))
    traj = result.trajectory.z
    losses = torch.stack([(z @ decoder.weight.detach().T - x).square().mean(1) for z in traj])  # (n_save, B)
    for i in (0, 2):
        finite = torch.isfinite(losses[:, i]) & torch.isfinite(traj[:, i]).all(1)
        last = int(finite.nonzero().max())
        assert last > 1 and traj[last, i].abs().max() > 1e6, "the sample did move (and diverge) before failing"
        torch.testing.assert_close(
            result.z[i],
            traj[last, i],
            rtol=0,
            atol=0,
            msg=f"sample {i}: z must be its last saved state with a finite loss, not z0",
        )


def test_linear_decoder_nan_weights_are_reported_not_propagated():
    # a broken decoder: every output non-finite; all samples stop at once with z0 kept
    decoder = LinearDecoder(torch.full((4, 2), float("nan"), dtype=torch.float64))
    x = torch.zeros(3, 4, dtype=torch.float64)
    for solver in ("amd", "dopri5"):
        result = encode(decoder, x, loss="mse", tau=5.0, solver=solver)
        assert (result.status == int(Status.NON_FINITE)).all()
        assert torch.equal(result.z, torch.zeros(3, 2, dtype=torch.float64))
