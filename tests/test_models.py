"""The paper's decoder, the autoencoder baseline and the linear decoder."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gfe_viz import Autoencoder, LinearDecoder, MLPDecoder

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_match_the_paper():
    assert n_params(MLPDecoder(20, 784)) == 700_234
    assert n_params(Autoencoder(20, 784)) == 1_399_704
    assert n_params(Autoencoder(20, 784).encoder) == 1_399_704 - 700_234
    assert n_params(MLPDecoder(2, 784)) == 700_234 - 18 * 150  # 18 fewer latent inputs to the first layer


def test_decoder_architecture():
    decoder = MLPDecoder(20, 784)
    linears = [m for m in decoder.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(20, 150), (150, 300), (300, 600), (600, 784)]
    assert sum(isinstance(m, nn.ELU) for m in decoder.modules()) == 3
    assert isinstance(list(decoder.net)[-1], nn.Linear), "the decoder outputs logits: no activation at the end"
    encoder = Autoencoder(20, 784).encoder
    linears = [m for m in encoder.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 600), (600, 300), (300, 150), (150, 20)]


@pytest.mark.parametrize("latent_dim", [2, 20])
def test_any_latent_size_and_image_shaped_output(latent_dim):
    decoder = MLPDecoder(latent_dim, 784, (1, 28, 28))
    out = decoder(torch.randn(5, latent_dim))
    assert out.shape == (5, 1, 28, 28)
    assert decoder.latent_dim == latent_dim
    ae = Autoencoder(latent_dim, 784, (1, 28, 28))
    x = torch.rand(5, 1, 28, 28)
    assert ae.encode(x).shape == (5, latent_dim)
    assert ae(x).shape == (5, 1, 28, 28)


def test_autoencoder_copies_a_given_decoder():
    decoder = MLPDecoder(2, 784)
    ae = Autoencoder(decoder=decoder)
    assert ae.latent_dim == 2
    for a, b in zip(ae.decoder.parameters(), decoder.parameters()):
        assert torch.equal(a, b) and a.data_ptr() != b.data_ptr()
    with torch.no_grad():
        next(ae.decoder.parameters()).add_(1.0)
    assert not torch.equal(next(ae.decoder.parameters()), next(decoder.parameters()))


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(latent_dim=0),
        dict(latent_dim=2.5),
        dict(out_dim=-1),
        dict(latent_dim=2, out_dim=784, out_shape=(1, 27, 28)),
    ],
)
def test_bad_model_arguments(kwargs):
    with pytest.raises(ValueError) as info:
        MLPDecoder(**kwargs)
    name = "out_shape" if "out_shape" in kwargs else next(iter(kwargs))
    assert name in str(info.value)


def test_linear_decoder_least_squares_latent():
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(7, 3, generator=g, dtype=torch.float64)
    bias = torch.randn(7, generator=g, dtype=torch.float64)
    decoder = LinearDecoder(weight, bias)
    x = torch.randn(4, 7, generator=g, dtype=torch.float64)
    z = decoder.least_squares_latent(x).detach()
    normal = torch.linalg.solve(weight.T @ weight, weight.T @ (x - bias).T).T
    torch.testing.assert_close(z, normal)
    torch.testing.assert_close(decoder(z).detach(), z @ weight.T + bias)
    # the residual is orthogonal to the columns of W: z is the minimiser
    residual = decoder(z).detach() - x
    torch.testing.assert_close(residual @ weight, torch.zeros(4, 3, dtype=torch.float64), atol=1e-12, rtol=0)
    assert decoder.latent_dim == 3
    assert torch.equal(LinearDecoder(weight).bias, torch.zeros(7, dtype=torch.float64))
