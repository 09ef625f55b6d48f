"""Small shared fixtures for the core tests: tiny float64 problems and the offline datasets."""

from __future__ import annotations

import pytest
import torch

from gfe_viz import LinearDecoder, MLPDecoder


@pytest.fixture(scope="module")
def one_torch_thread():
    """For modules of tiny problems (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``):
    one intra-op thread is faster than two for them, and far faster on a busy CPU."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _orthonormal(rows: int, cols: int, generator: torch.Generator) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(rows, cols, generator=generator, dtype=torch.float64))
    return q


@pytest.fixture
def linear_problem():
    """Factory: ``make(d, P, B, s_max=None, bias=True) -> (LinearDecoder, x)`` in float64, seeded.

    With ``s_max`` the weight has singular values spread log-uniformly over [1, s_max], so the
    MSE Hessian 2/P W^T W has condition number s_max**2; without it W is Gaussian.
    """

    def make(d: int = 3, P: int = 6, B: int = 4, s_max: float | None = None, bias: bool = True):
        g = torch.Generator().manual_seed(0)
        if s_max is None:
            weight = torch.randn(P, d, generator=g, dtype=torch.float64)
        else:
            s = torch.logspace(0.0, float(torch.log10(torch.tensor(s_max))), d, dtype=torch.float64)
            weight = _orthonormal(P, d, g) @ torch.diag(s) @ _orthonormal(d, d, g).T
        b = 0.3 * torch.randn(P, generator=g, dtype=torch.float64) if bias else None
        x = torch.randn(B, P, generator=g, dtype=torch.float64)
        return LinearDecoder(weight, b), x

    return make


@pytest.fixture
def curved_mlp():
    """A float64 MLPDecoder(2, 8) with enlarged weights (strong, sample-dependent curvature, so AMD
    rejects many steps), BCE targets in [0, 1] and random starting latents: ``(decoder, x, z0)``."""
    torch.manual_seed(0)
    decoder = MLPDecoder(2, 8).double()
    with torch.no_grad():
        decoder.net[0].weight.mul_(3.0)
        decoder.net[-1].weight.mul_(30.0)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(5, 8, generator=g, dtype=torch.float64)
    z0 = torch.randn(5, 2, generator=g, dtype=torch.float64)
    return decoder, x, z0


@pytest.fixture
def linear():
    """A linear decoder of a 2-D latent with three outputs, and one float64 target: a landscape with a closed form."""
    weight = torch.tensor([[1.0, 0.5], [-0.3, 2.0], [0.7, 0.1]], dtype=torch.float64)
    decoder = LinearDecoder(weight, torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64))
    x = torch.tensor([[0.4, 1.2, -0.5]], dtype=torch.float64)
    return decoder, x


def _tiny_problem(n_images: int) -> tuple[MLPDecoder, torch.Tensor]:
    """An untrained MLP decoder of a 2-D latent (seed 0) and ``n_images`` random 4x4 images (seed 1)."""
    torch.manual_seed(0)
    decoder = MLPDecoder(2, 16, (1, 4, 4))
    return decoder, torch.rand(n_images, 1, 4, 4, generator=torch.Generator().manual_seed(1))


@pytest.fixture
def tiny():
    """An untrained MLP decoder of a 2-D latent and three random 4x4 images."""
    return _tiny_problem(3)


@pytest.fixture
def quadratic():
    """MSE of a linear decoder and its latent Hessian's eigenvalues: Hessian (2/P) W^T W for every sample."""
    weight = torch.tensor([[2.0, 0.0], [0.0, 0.3], [1.0, 0.2]], dtype=torch.float64)
    decoder = LinearDecoder(weight)
    x = torch.tensor([[1.0, -1.0, 0.5], [0.2, 0.4, -0.3]], dtype=torch.float64)
    return decoder, x, torch.linalg.eigvalsh(2 / 3 * weight.T @ weight)


@pytest.fixture
def tiny_lab():
    """The decoder of ``tiny`` and four random 4x4 images: the solver lab's batch."""
    return _tiny_problem(4)


@pytest.fixture(scope="session")
def mnist_splits():
    """MNIST from ``$GFE_DATA_DIR`` (../shared/data in the tests), never downloaded."""
    from gfe_viz.data import load_images

    return load_images("mnist", download=False)
