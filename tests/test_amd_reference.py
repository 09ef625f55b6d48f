"""The vectorised AMD solver against the plain one-sample loop of ``gfe_viz.amd_reference``, sample by sample."""

from __future__ import annotations

import pytest
import torch
from test_amd_chunks import RowExactDecoder

from gfe_viz import AMD, AMD_FAST, AMD_MNIST, encode
from gfe_viz.amd_reference import amd_one_sample

pytestmark = pytest.mark.usefixtures("one_torch_thread")

STIFFNESS = (0.02, 0.5, 8.0, 60.0)  #: each sample's loss weight: from a flat valley to one that rejects dt = 1
OPTIONS = {
    "mnist": AMD_MNIST,
    "coarse floor": AMD_MNIST.replace(max_shrinks=3, fail_jump=4.0),  # the floor 1/8: forced steps and jumps
    "fast": AMD_FAST,  # stops where dt underflows
}


def weighted_square(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error of columns 1..3 weighted by the target's column 0, summed column by column so that
    each row is computed the same way at any batch size: one stiffness per sample."""
    total = (output[:, 1] - target[:, 1]).square()
    for j in (2, 3):
        total = total + (output[:, j] - target[:, j]).square()
    return target[:, 0] * total


@pytest.fixture
def stiff_and_flat():
    decoder = RowExactDecoder(out=4)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(len(STIFFNESS), 4, generator=g, dtype=torch.float64)
    x[:, 0] = torch.tensor(STIFFNESS, dtype=torch.float64)
    z0 = 0.5 * torch.randn(len(STIFFNESS), 2, generator=g, dtype=torch.float64)
    return decoder, x, z0


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("name", OPTIONS)
def test_every_sample_follows_the_plain_one_sample_loop(stiff_and_flat, name, order):
    decoder, x, z0 = stiff_and_flat
    options, tau = OPTIONS[name], 200.0
    result = encode(decoder, x, solver=AMD(options), loss=weighted_square, z0=z0, tau=tau, order=order)
    stats = result.stats
    for i in range(x.shape[0]):
        plain = amd_one_sample(result.flow, x[i : i + 1], z0[i : i + 1], tau, options)
        torch.testing.assert_close(result.z[i], plain.z, rtol=0, atol=1e-6, msg=f"sample {i}")
        counts = (int(stats.accepted[i]), int(stats.rejected[i]), int(stats.forced[i]))
        assert counts == (plain.accepted, plain.rejected, plain.forced), f"sample {i}: accepted, rejected, forced"
        assert float(stats.t[i]) == pytest.approx(plain.t, rel=1e-12)
    # the problem exercises the rules it checks: the stiff samples reject steps, the flat one does not
    assert stats.rejected[-1] > 0 and stats.rejected[-1] > stats.rejected[0]
    if name == "coarse floor":
        assert stats.forced.sum() > 0, "some sample must reach the dt floor and jump"
