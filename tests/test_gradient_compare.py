"""Approximate versus full adjoint: the agreement measures and the horizon sweep."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gfe_viz import AMD_MNIST, MLPDecoder, encode
from gfe_viz.adjoint import approximate_adjoint_gradient, full_adjoint_gradient
from gfe_viz.flows import GradientFlow
from gfe_viz.gradient_compare import compare_adjoints, gradient_agreement


@pytest.fixture
def batch():
    torch.manual_seed(0)
    decoder = MLPDecoder(2, 16).double()
    with torch.no_grad():
        decoder.net[-1].weight.mul_(10.0)  # a landscape steep enough to converge within tau = 100
    x = torch.rand(4, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return decoder, x


def test_agreement_of_known_pairs():
    g = [torch.tensor([1.0, 2.0]), torch.tensor([[3.0]])]
    assert gradient_agreement(g, g) == pytest.approx((1.0, 1.0))
    assert gradient_agreement([2 * t for t in g], g) == pytest.approx((1.0, 2.0))
    assert gradient_agreement([-t for t in g], g) == pytest.approx((-1.0, 1.0))
    cosine, ratio = gradient_agreement([torch.tensor([1.0, 0.0])], [torch.tensor([0.0, 2.0])])
    assert cosine == pytest.approx(0.0) and ratio == pytest.approx(0.5)
    assert gradient_agreement([torch.ones(2)], [torch.zeros(2)])[1] == math.inf


def test_agreement_rejects_mismatched_gradients():
    with pytest.raises(ValueError, match="same number"):
        gradient_agreement([torch.ones(2)], [torch.ones(2), torch.ones(1)])
    with pytest.raises(ValueError, match="same shapes"):
        gradient_agreement([torch.ones(2)], [torch.ones(3)])


def test_sweep_matches_a_direct_computation(batch):
    decoder, x = batch
    comparison = compare_adjoints(decoder, x, [5.0, 50.0], conv_tol=0.0)
    result = encode(decoder, x, tau=50.0, record=True, amd=AMD_MNIST, conv_tol=0.0)
    flow = GradientFlow(decoder, tau=50.0)
    loss, full = full_adjoint_gradient(flow, x, result)
    _, approx = approximate_adjoint_gradient(flow, x, result.z)
    cosine, ratio = gradient_agreement(approx, full)
    assert comparison.cosine[1] == pytest.approx(cosine, rel=1e-9)
    assert comparison.norm_ratio[1] == pytest.approx(ratio, rel=1e-9)
    assert comparison.loss[1] == pytest.approx(loss.item(), rel=1e-9)
    assert comparison.nfe[1] == pytest.approx(result.stats.nfe.double().mean().item())
    _, grad_z = flow.loss_and_grad(result.z, x)
    assert comparison.grad_norm[1] == pytest.approx(grad_z.norm(dim=1).mean().item(), rel=1e-9)


def test_the_adjoints_follow_the_flow_that_was_solved(batch):
    decoder, x = batch
    options = dict(alpha=0.5, alpha_schedule="exponential", conv_tol=0.0)
    comparison = compare_adjoints(decoder, x, [20.0], **options)
    result = encode(decoder, x, tau=20.0, record=True, amd=AMD_MNIST, **options)
    solved = GradientFlow(decoder, tau=20.0, alpha=0.5, alpha_schedule="exponential")
    loss, full = full_adjoint_gradient(solved, x, result)
    _, approx = approximate_adjoint_gradient(solved, x, result.z)
    assert comparison.cosine[0] == pytest.approx(gradient_agreement(approx, full)[0], rel=1e-9)
    _, default_full = full_adjoint_gradient(GradientFlow(decoder, tau=20.0), x, result)  # the path never taken
    assert gradient_agreement(approx, default_full)[0] != pytest.approx(comparison.cosine[0], rel=1e-6)
    with pytest.raises(ValueError, match="order must be 1 .the full adjoint follows the first-order flow., got 2"):
        compare_adjoints(decoder, x, [20.0], order=2)


def test_longer_solves_converge_and_the_gradients_agree(batch):
    decoder, x = batch
    comparison = compare_adjoints(decoder, x, [1.0, 10.0, 100.0], conv_tol=0.0)
    assert comparison.grad_norm[-1] < 0.01 * comparison.grad_norm[0]
    assert comparison.cosine[-1] > 0.9999
    assert comparison.norm_ratio[-1] == pytest.approx(1.0, abs=1e-3)
    assert comparison.cosine[1] < comparison.cosine[-1]  # mid-solve, the trajectory term matters
    assert np.all(np.diff(comparison.nfe) > 0)


def test_kept_entries_are_the_gradients(batch):
    decoder, x = batch
    n_params = sum(p.numel() for p in decoder.parameters())
    comparison = compare_adjoints(decoder, x, [3.0, 30.0], n_entries=n_params + 10)
    assert comparison.approx_entries.shape == (2, n_params)
    for k in range(2):  # all entries kept: their cosine is the gradients' cosine
        a, f = comparison.approx_entries[k], comparison.full_entries[k]
        assert a @ f / np.linalg.norm(a) / np.linalg.norm(f) == pytest.approx(comparison.cosine[k], rel=1e-9)
    few = compare_adjoints(decoder, x, [3.0, 30.0], n_entries=7)
    assert few.full_entries.shape == (2, 7)


def test_every_horizon_starts_from_the_same_uniform_z0(batch):
    decoder, x = batch
    one = compare_adjoints(decoder, x, [4.0, 40.0], z0="uniform", seed=3)
    again = compare_adjoints(decoder, x, [40.0], z0="uniform", seed=3)
    other = compare_adjoints(decoder, x, [40.0], z0="uniform", seed=4)
    assert again.loss[0] == one.loss[1] and again.cosine[0] == one.cosine[1]
    assert other.loss[0] != one.loss[1]


@pytest.mark.parametrize("taus", [[], [1.0, -2.0], [0.0], "10", [[1.0, 2.0]], [float("nan")]])
def test_bad_horizons_are_refused(batch, taus):
    decoder, x = batch
    with pytest.raises(ValueError, match="taus must be"):
        compare_adjoints(decoder, x, taus)


def test_bad_entry_count_is_refused(batch):
    decoder, x = batch
    with pytest.raises(ValueError, match="n_entries must be a positive integer, got 0"):
        compare_adjoints(decoder, x, [1.0], n_entries=0)
