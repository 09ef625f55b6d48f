"""``gfe_viz.encode``: convergence to the analytic latent, the result object, z0 and dtype handling."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gfe_viz import EncodeResult, MLPDecoder, Status, encode
from gfe_viz.flows import GradientFlow

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SOLVES = [
    pytest.param(dict(solver="amd", acceptance="per_sample"), id="amd-per_sample"),
    pytest.param(dict(solver="amd", acceptance="batch"), id="amd-batch"),
    pytest.param(dict(solver="amd", acceptance="per_sample", order=2), id="amd-per_sample-order2"),
    pytest.param(dict(solver="amd", acceptance="batch", order=2), id="amd-batch-order2"),
    pytest.param(dict(solver="euler", dt=0.5), id="euler"),
    pytest.param(dict(solver="rk4", dt=0.5), id="rk4"),
    pytest.param(dict(solver="dopri5", rtol=1e-8, atol=1e-10), id="dopri5"),
]


@pytest.mark.parametrize("kwargs", SOLVES)
def test_linear_mse_encoding_reaches_the_least_squares_latent(linear_problem, kwargs):
    decoder, x = linear_problem(d=3, P=6, B=4)
    # MSE Hessian 2/P W^T W: eigenvalues in about [0.8, 2.8], so dt = 0.5 is stable for euler and rk4
    hessian = 2.0 / 6 * decoder.weight.T @ decoder.weight
    assert 0.5 < 2.0 / torch.linalg.eigvalsh(hessian.detach()).max()
    expected = decoder.least_squares_latent(x).detach()
    z0 = torch.randn(4, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    result = encode(decoder, x, loss="mse", z0=z0, tau=60.0, **kwargs)
    assert isinstance(result, EncodeResult)
    assert result.z.dtype == torch.float64
    assert (result.z - expected).abs().max() <= 1e-4
    assert (result.status != int(Status.NON_FINITE)).all()
    assert torch.isfinite(result.loss).all()


def test_result_object_shapes_and_records(linear_problem):
    decoder, x = linear_problem(d=3, P=6, B=4)
    result = encode(decoder, x, loss="mse", tau=5.0, record=True)
    B = 4
    assert result.z.shape == (B, 3) and result.loss.shape == (B,) and result.status.shape == (B,)
    for name in ("nfe", "accepted", "rejected", "t", "forced"):
        assert getattr(result.stats, name).shape == (B,)
    A = len(result.steps)
    assert A == int(result.stats.nfe.max()) - 1
    for name in ("t", "dt", "accepted", "loss", "active"):
        assert getattr(result.steps, name).shape == (A, B)
    assert result.trajectory.z.shape == (A + 1, B, 3)
    assert result.trajectory.t.shape == (A + 1, B)
    torch.testing.assert_close(result.trajectory.z[0], torch.zeros(B, 3, dtype=torch.float64))
    counts = result.status_counts()
    assert sum(counts.values()) == B and set(counts) == {s.name.lower() for s in Status}
    assert "amd" in repr(result)
    plain = encode(decoder, x, loss="mse", tau=5.0)
    assert plain.steps is None and plain.trajectory is None
    torch.testing.assert_close(plain.z, result.z, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("solver", ["amd", "rk4"])
def test_solve_follows_the_dtype_of_x_and_decoder(dtype, solver):
    torch.manual_seed(0)
    decoder = MLPDecoder(2, 6).to(dtype)
    x = torch.rand(3, 6, dtype=dtype)
    result = encode(decoder, x, solver=solver, tau=5.0, z0="uniform", generator=torch.Generator().manual_seed(0))
    assert result.z.dtype == dtype and result.loss.dtype == dtype
    assert torch.isfinite(result.z).all()


def test_z0_choices(linear_problem):
    decoder, x = linear_problem(d=3, P=6, B=4)
    kw = dict(loss="mse", tau=1e-3, dt0=1e-3, dt_max=1e-3, record=True)
    zeros = encode(decoder, x, z0="zeros", **kw)
    torch.testing.assert_close(zeros.trajectory.z[0], torch.zeros(4, 3, dtype=torch.float64))
    u1 = encode(decoder, x, z0="uniform", generator=torch.Generator().manual_seed(7), **kw)
    u2 = encode(decoder, x, z0="uniform", generator=torch.Generator().manual_seed(7), **kw)
    start = u1.trajectory.z[0]
    assert torch.equal(start, u2.trajectory.z[0])
    assert ((start >= 0) & (start < 1)).all() and start.std() > 0.1
    given = torch.full((4, 3), 0.25, dtype=torch.float64)
    tensor = encode(decoder, x, z0=given, **kw)
    torch.testing.assert_close(tensor.trajectory.z[0], given)
    # a float32 z0 is moved to x's dtype
    as32 = encode(decoder, x, z0=given.float(), **kw)
    assert as32.z.dtype == torch.float64


def test_latent_dim_inferred_from_first_linear_or_given():
    torch.manual_seed(0)
    x = torch.rand(2, 5, dtype=torch.float64)
    seq = nn.Sequential(nn.Linear(3, 5), nn.Tanh()).double()
    assert encode(seq, x, loss="mse", tau=1.0).z.shape == (2, 3)

    class Opaque(nn.Module):
        def forward(self, z):
            return torch.cat([z, z, z[:, :1]], 1)

    with pytest.raises(ValueError, match="latent_dim"):
        encode(Opaque(), x, loss="mse", tau=1.0)
    assert encode(Opaque(), x, loss="mse", tau=1.0, latent_dim=2).z.shape == (2, 2)


def test_decoder_output_is_reshaped_to_the_data_shape():
    torch.manual_seed(0)
    decoder = MLPDecoder(2, 16).double()  # flat output for image-shaped data
    x = torch.rand(3, 1, 4, 4, dtype=torch.double)
    result = encode(decoder, x, tau=5.0)
    flat = encode(decoder, x.reshape(3, 16), tau=5.0)
    torch.testing.assert_close(result.z, flat.z)


def test_bce_encoding_lowers_the_loss_and_progress_is_reported():
    torch.manual_seed(0)
    decoder = MLPDecoder(2, 12).double()
    x = torch.rand(4, 12, dtype=torch.double).round()
    seen = []
    result = encode(decoder, x, tau=200.0, progress=seen.append)
    start = GradientFlow(decoder).loss(torch.zeros(4, 2, dtype=torch.double), x)
    assert (result.loss < start).all()
    assert seen and seen[-1] == 4 and seen == sorted(seen)
