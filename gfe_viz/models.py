"""The paper's MLP decoder and the autoencoder baseline with the mirrored encoder."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from ._checks import check_positive_int

HIDDEN = (150, 300, 600)


def _mlp(widths: list[int]) -> nn.Sequential:
    """Linear layers with ELU between them and none after the last (outputs are logits)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        if i:
            layers.append(nn.ELU())
        layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


class MLPDecoder(nn.Module):
    """Linear(d,150)-ELU-Linear(150,300)-ELU-Linear(300,600)-ELU-Linear(600,out): logits.

    700,234 parameters at latent_dim 20, out_dim 784. ``out_shape`` (e.g. ``(1, 28, 28)``)
    reshapes the output so that it matches the images it reconstructs.
    """

    def __init__(self, latent_dim: int = 20, out_dim: int = 784, out_shape: tuple[int, ...] | None = None):
        super().__init__()
        check_positive_int("latent_dim", latent_dim)
        check_positive_int("out_dim", out_dim)
        if out_shape is not None and torch.Size(out_shape).numel() != out_dim:
            raise ValueError(f"out_shape must have out_dim={out_dim} elements, got {tuple(out_shape)}")
        self.latent_dim = latent_dim
        self.out_dim = out_dim
        self.out_shape = tuple(out_shape) if out_shape is not None else (out_dim,)
        self.net = _mlp([latent_dim, *HIDDEN, out_dim])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).reshape(z.shape[0], *self.out_shape)


class Autoencoder(nn.Module):
    """The AE baseline: a mirrored encoder Linear(out,600)-ELU-...-Linear(150,d) plus an MLPDecoder.

    1,399,704 parameters at latent_dim 20, out_dim 784. Pass ``decoder`` to start from the same
    decoder weights as a GFE run (it is copied, so the two runs never share parameters).
    """

    def __init__(
        self,
        latent_dim: int = 20,
        out_dim: int = 784,
        out_shape: tuple[int, ...] | None = None,
        decoder: MLPDecoder | None = None,
    ):
        super().__init__()
        self.decoder = copy.deepcopy(decoder) if decoder is not None else MLPDecoder(latent_dim, out_dim, out_shape)
        self.latent_dim = self.decoder.latent_dim
        self.encoder = _mlp([self.decoder.out_dim, *reversed(HIDDEN), self.latent_dim])

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.reshape(x.shape[0], -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encode(x))


class LinearDecoder(nn.Module):
    """D(z) = W z + b: the decoder whose MSE encoding has a closed form (least squares)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None):
        super().__init__()
        self.weight = nn.Parameter(weight.clone())
        self.bias = nn.Parameter(bias.clone() if bias is not None else torch.zeros(weight.shape[0], dtype=weight.dtype))
        self.latent_dim = weight.shape[1]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.weight.T + self.bias

    def least_squares_latent(self, x: torch.Tensor) -> torch.Tensor:
        """The exact minimiser of ||W z + b - x||^2 for each row of x."""
        return torch.linalg.lstsq(self.weight, (x - self.bias).T).solution.T


def initial_model(method: str, latent_dim: int, out_shape: tuple[int, ...] = (1, 28, 28), seed: int = 0) -> nn.Module:
    """The model a training run of ``method`` starts from: an :class:`MLPDecoder` drawn right after
    ``torch.manual_seed(seed)``, inside an :class:`Autoencoder` for "ae". Every method started
    with the same seed therefore starts from the same decoder weights."""
    torch.manual_seed(seed)
    decoder = MLPDecoder(latent_dim, math.prod(out_shape), out_shape)
    return Autoencoder(decoder=decoder) if method == "ae" else decoder
