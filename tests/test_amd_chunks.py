"""The chunked AMD loop (``check_every``) and its CUDA-graph form give the per-attempt loop's results.

Exactly, for a decoder whose rows do not depend on the batch size: BLAS kernels round a row
differently for different batch sizes, and a chunk evaluates finished samples' rows that the
per-attempt loop has already dropped.
"""

from __future__ import annotations

import math

import pytest
import torch
from test_amd import CountingDecoder
from torch import nn

from gfe_viz import AMD_MNIST, AMDOptions, Status, encode
from gfe_viz.flows import GradientFlow

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def longer_than(reference) -> int:
    """A chunk longer than the whole solve of ``reference``: the host checks only after its end."""
    return int(reference.stats.nfe.max()) + 4


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


class RowExactDecoder(nn.Module):
    """A curved decoder R^2 -> R^3 built from elementwise products and sums in a fixed order, so a
    sample's output and gradient are the same to the last bit whatever the batch around it."""

    latent_dim = 2

    def __init__(self, hidden: int = 4, out: int = 3, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w1 = nn.Parameter(0.7 * torch.randn(hidden, 2, generator=g, dtype=torch.float64))
        self.b1 = nn.Parameter(0.5 * torch.randn(hidden, generator=g, dtype=torch.float64))
        self.w2 = nn.Parameter(0.5 * torch.randn(out, hidden, generator=g, dtype=torch.float64))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        hidden = []
        for w, b in zip(self.w1, self.b1):
            u = z[:, 0] * w[0] + z[:, 1] * w[1] + b
            hidden.append(u - u * u * u * (1.0 / 3.0))  # a smooth, saturating-then-turning nonlinearity
        columns = []
        for w in self.w2:
            column = hidden[0] * w[0]
            for h, weight in zip(hidden[1:], w[1:]):
                column = column + h * weight
            columns.append(column)
        return torch.stack(columns, 1)


def mean_square(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample mean squared error, summed column by column (a reduction kernel may not be row-exact)."""
    total = (output[:, 0] - target[:, 0]).square()
    for j in range(1, output.shape[1]):
        total = total + (output[:, j] - target[:, j]).square()
    return total * (1.0 / output.shape[1])


@pytest.fixture
def row_exact_problem():
    decoder = RowExactDecoder()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 3, generator=g, dtype=torch.float64)
    z0 = 0.5 * torch.randn(5, 2, generator=g, dtype=torch.float64)
    return decoder, x, z0


def _equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Same shape and values, NaN equal to NaN (the step logs fill inactive samples with NaN)."""
    return a.shape == b.shape and torch.equal(a.nan_to_num(nan=-7.0), b.nan_to_num(nan=-7.0))


def assert_same_solve(result, reference, recorded: bool = True) -> None:
    for name in ("z", "loss", "status", "state"):
        assert _equal(getattr(result, name), getattr(reference, name)), name
    for name in ("nfe", "accepted", "rejected", "t", "forced"):
        assert _equal(getattr(result.stats, name), getattr(reference.stats, name)), f"stats.{name}"
    if recorded:
        for name in ("t", "dt", "accepted", "loss", "active"):
            assert _equal(getattr(result.steps, name), getattr(reference.steps, name)), f"steps.{name}"
        for name in ("t", "z", "accepted", "loss", "nfe"):
            assert _equal(getattr(result.trajectory, name), getattr(reference.trajectory, name)), f"trajectory.{name}"


SETTINGS = {
    "default": dict(amd=AMDOptions(conv_tol=1e-6, conv_after=0.0), tau=3.0),
    "mnist-underflow-stop": dict(amd=AMD_MNIST.replace(stop_at_underflow=True, conv_tol=0.0), tau=1e3),
    "attempt-limit": dict(amd=AMDOptions(conv_tol=0.0, max_attempts=50), tau=1e6),  # 50 = 16 chunks of 3 + 2
}


@pytest.mark.parametrize("settings", list(SETTINGS))
@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("acceptance", ["per_sample", "batch"])
def test_chunked_loop_gives_the_per_attempt_results_exactly(row_exact_problem, acceptance, order, settings):
    decoder, x, z0 = row_exact_problem
    kw = dict(loss=mean_square, z0=z0, order=order, acceptance=acceptance, record=True, **SETTINGS[settings])
    reference = encode(decoder, x, **kw)
    nfe, status = reference.stats.nfe, reference.status
    assert (reference.stats.rejected > 0).any() and (reference.stats.accepted > 0).all()
    if acceptance == "per_sample" and settings != "attempt-limit":
        assert len(set(nfe.tolist())) >= 3, "samples must finish at different attempts, inside chunks"
    expected_status = {
        "default": None,
        "mnist-underflow-stop": Status.STEP_UNDERFLOW,
        "attempt-limit": Status.STEP_LIMIT,
    }[settings]
    if expected_status is not None:
        assert (status == int(expected_status)).any(), "the setting's stopping rule must be exercised"
    for check_every in (1, 3, longer_than(reference)):
        assert_same_solve(encode(decoder, x, check_every=check_every, **kw), reference)
    # and without recording, which runs no host code inside a chunk
    assert_same_solve(encode(decoder, x, check_every=3, **{**kw, "record": False}), reference, recorded=False)


@pytest.mark.parametrize("check_every", [1, 4])
@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("acceptance", ["per_sample", "batch"])
def test_recorded_logs_are_the_solves_stopped_after_each_attempt(row_exact_problem, acceptance, order, check_every):
    # a plain record, one attempt at a time: the solve stopped by max_attempts = k is where every
    # sample stood after k attempts, so row k of the trajectory, and attempt k of the step log, follow
    decoder, x, z0 = row_exact_problem
    options = AMDOptions(conv_tol=1e-6, conv_after=0.0)
    kw = dict(loss=mean_square, z0=z0, order=order, acceptance=acceptance, tau=3.0, check_every=check_every)
    recorded = encode(decoder, x, amd=options, record=True, **kw)
    steps, traj = recorded.steps, recorded.trajectory
    A = int(recorded.stats.nfe.max()) - 1
    assert len(steps) == A and traj.z.shape[0] == A + 1
    if acceptance == "per_sample":
        assert (recorded.stats.nfe < A + 1).any(), "some sample must finish before the last attempt"
    previous = None
    for k in range(A + 1):
        stopped = recorded if k == A else encode(decoder, x, amd=options.replace(max_attempts=max(k, 1)), **kw)
        z, t, loss, nfe = stopped.z, stopped.stats.t, stopped.loss, stopped.stats.nfe
        if k == 0:  # nothing attempted yet
            z, t, loss = z0, torch.zeros_like(t), GradientFlow(decoder, mean_square).loss(z0, x)
            nfe, moved = torch.ones_like(nfe), torch.ones(x.shape[0], dtype=torch.bool)
        else:
            moved = stopped.stats.accepted > (previous.stats.accepted if k > 1 else 0)
        for name, value in (("z", z), ("t", t), ("loss", loss), ("nfe", nfe), ("accepted", moved)):
            assert _equal(getattr(traj, name)[k], value.to(getattr(traj, name).dtype)), f"trajectory.{name}[{k}]"
        if k > 0:
            was_active = (previous.status == int(Status.STEP_LIMIT)) if k > 1 else torch.ones_like(moved)
            assert torch.equal(steps.active[k - 1], was_active), f"steps.active[{k - 1}]"
            assert torch.equal(steps.accepted[k - 1], moved), f"steps.accepted[{k - 1}]"
            assert _equal(steps.t[k - 1][was_active], traj.t[k - 1][was_active]), f"steps.t[{k - 1}]"
            assert _equal(steps.loss[k - 1][moved], traj.loss[k][moved]), f"steps.loss[{k - 1}]"
            assert steps.t[k - 1][~was_active].isnan().all() and (steps.dt[k - 1][~was_active] == 0).all()
            assert (steps.dt[k - 1][was_active] > 0).all()
        previous = stopped


@pytest.mark.parametrize("acceptance", ["per_sample", "batch"])
def test_chunked_loop_with_non_finite_samples(acceptance):
    # sample 0 meets NaN on its way (a forced step into NaN ends it), sample 2 is infinite from the start
    class NaNRightHalfInfMarked(nn.Module):
        latent_dim = 2

        def forward(self, z):
            out = torch.where(z[:, :1] > 0, torch.full_like(z, float("nan")), z)
            return torch.where(z[:, 1:] > 5, torch.full_like(z, float("inf")), out)

    x = torch.tensor([[1.0, 0.5], [-1.0, 0.5], [-0.5, 0.2], [-0.5, -0.25]], dtype=torch.float64)
    z0 = torch.tensor([[0.0, 0.0], [0.0, 0.0], [-1.0, 10.0], [0.0, 0.0]], dtype=torch.float64)
    kw = dict(loss="mse", z0=z0, tau=300.0, acceptance=acceptance, record=True)
    reference = encode(NaNRightHalfInfMarked(), x, **kw)
    assert reference.status[[0, 2]].tolist() == [int(Status.NON_FINITE)] * 2
    assert (reference.status[[1, 3]] != int(Status.NON_FINITE)).all()
    for check_every in (3, longer_than(reference)):
        assert_same_solve(encode(NaNRightHalfInfMarked(), x, check_every=check_every, **kw), reference)


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("acceptance", ["per_sample", "batch"])
def test_chunked_loop_with_a_blas_decoder_agrees_to_rounding(curved_mlp, acceptance, order):
    decoder, x, z0 = curved_mlp
    kw = dict(z0=z0, tau=30.0, conv_tol=1e-6, order=order, acceptance=acceptance)
    reference = encode(decoder, x, **kw)
    for check_every in (4, longer_than(reference)):
        result = encode(decoder, x, check_every=check_every, **kw)
        torch.testing.assert_close(result.z, reference.z, rtol=0, atol=1e-9)
        assert torch.equal(result.status, reference.status)
        assert torch.equal(result.stats.nfe, reference.stats.nfe)


def test_a_chunk_runs_to_its_end_and_drops_finished_samples_after_it(row_exact_problem):
    decoder, x, z0 = row_exact_problem
    counting, K = CountingDecoder(decoder), 7
    result = encode(counting, x, loss=mean_square, z0=z0, **SETTINGS["default"], check_every=K)
    nfe = result.stats.nfe
    attempts = math.ceil((int(nfe.max()) - 1) / K) * K  # the chunk in which the last sample finishes runs out
    assert len(counting.rows) == 1 + attempts
    # a sample's rows are evaluated up to the end of the chunk in which it finished, not after it
    per_sample_rows = 1 + torch.ceil((nfe - 1).double() / K).long() * K
    assert sum(counting.rows) == int(per_sample_rows.sum())
    assert sum(counting.rows) > int(nfe.sum()), "the rows past a sample's end are evaluated but not counted"


def test_progress_is_reported_at_the_checks(row_exact_problem):
    decoder, x, z0 = row_exact_problem
    seen = []
    encode(decoder, x, loss=mean_square, z0=z0, **SETTINGS["default"], check_every=5, progress=seen.append)
    assert seen == sorted(seen) and len(set(seen)) == len(seen) and seen[-1] == x.shape[0]
    every, reference = [], encode(decoder, x, loss=mean_square, z0=z0, **SETTINGS["default"])
    encode(
        decoder,
        x,
        loss=mean_square,
        z0=z0,
        **SETTINGS["default"],
        check_every=longer_than(reference),
        progress=every.append,
    )
    assert every == [x.shape[0]], "one check, after the only chunk"


@pytest.mark.parametrize(
    "kwargs, needles",
    [
        (dict(check_every=0), ["check_every", "positive integer", "0"]),
        (dict(check_every=2.5), ["check_every", "2.5"]),
        (dict(check_every=True), ["check_every", "True"]),
        (dict(cuda_graph="yes"), ["cuda_graph", "'yes'", "True or False"]),
        (dict(solver="rk4", check_every=4), ["check_every", "solver='amd' only", "'rk4'"]),
    ],
)
def test_bad_chunk_settings_name_the_parameter(row_exact_problem, kwargs, needles):
    decoder, x, _ = row_exact_problem
    with pytest.raises(ValueError) as info:
        encode(decoder, x, loss=mean_square, tau=1.0, **kwargs)
    for needle in needles:
        assert needle in str(info.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_graph_on_the_cpu_is_refused(row_exact_problem):
    decoder, x, _ = row_exact_problem
    with pytest.raises(ValueError, match="cuda_graph=True needs x and the decoder on a CUDA device, got device 'cpu'"):
        encode(decoder, x, loss=mean_square, tau=1.0, cuda_graph=True)


# --- CUDA graphs (run on a machine with CUDA) -----------------------------------------------------


@needs_cuda
@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("acceptance", ["per_sample", "batch"])
def test_cuda_graph_gives_the_per_attempt_results_exactly(row_exact_problem, acceptance, order):
    decoder, x, z0 = row_exact_problem
    decoder, x, z0 = decoder.cuda(), x.cuda(), z0.cuda()
    for settings in SETTINGS.values():
        kw = dict(loss=mean_square, z0=z0, order=order, acceptance=acceptance, **settings)
        reference = encode(decoder, x, **kw)
        for check_every in (1, 3, longer_than(reference)):
            assert_same_solve(
                encode(decoder, x, check_every=check_every, cuda_graph=True, **kw), reference, recorded=False
            )
            assert_same_solve(encode(decoder, x, check_every=check_every, **kw), reference, recorded=False)
    with pytest.raises(ValueError, match="record=True"):
        encode(decoder, x, loss=mean_square, z0=z0, tau=1.0, record=True, cuda_graph=True)


@needs_cuda
@pytest.mark.parametrize("gradient", ["autograd", "fused"])
def test_cuda_graph_with_the_mlp_decoder_agrees_to_rounding(curved_mlp, gradient):
    decoder, x, z0 = (v.cuda() for v in curved_mlp)
    kw = dict(z0=z0, tau=30.0, conv_tol=1e-6, gradient=gradient)
    reference = encode(decoder, x, **kw)
    result = encode(decoder, x, check_every=8, cuda_graph=True, **kw)
    torch.testing.assert_close(result.z, reference.z, rtol=0, atol=1e-9)
    assert torch.equal(result.status, reference.status) and torch.equal(result.stats.nfe, reference.stats.nfe)
    assert result.z.device.type == "cuda"
