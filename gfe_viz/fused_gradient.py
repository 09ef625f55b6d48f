"""The loss and its latent gradient for the MLP decoder, written out by hand.

An AMD attempt needs l(x, D(z)) and grad_z l for the current latents, nothing else: no parameter
gradients, no graph to keep. For :class:`~gfe_viz.models.MLPDecoder` (Linear layers with ELU
between them) and the built-in BCE-on-logits or MSE loss this is one pass of matrix products
forward and one back,

    g_L = dl/do,   g_{k-1} = (g_k W_k) * elu'(pre_{k-1}),   grad_z l = g_1 W_1,

with elu'(p) = 1 for p > 0 and exp(p) = elu(p) + 1 otherwise, so the forward activations give
the derivatives for free. It skips autograd's graph building and bookkeeping, which dominate at
the small batches GFE trains with; the values equal autograd's to float rounding (tested).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FUSED_LOSSES = ("bce", "mse")


def fused_layers(decoder: nn.Module) -> list[nn.Linear] | None:
    """The Linear layers of an MLP decoder whose layers alternate Linear and ELU(alpha=1), else None."""
    net = getattr(decoder, "net", None)
    if not isinstance(net, nn.Sequential) or len(net) % 2 == 0:
        return None
    linears, activations = list(net)[0::2], list(net)[1::2]
    if not all(isinstance(m, nn.Linear) and m.bias is not None for m in linears):
        return None
    if not all(isinstance(m, nn.ELU) and m.alpha == 1.0 for m in activations):
        return None
    return linears


def fused_loss_and_grad(
    layers: list[nn.Linear], loss: str, z: torch.Tensor, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample loss (n,) and grad_z (n, d) of ``loss`` ("bce" on logits or "mse", per-pixel mean)."""
    target = x.reshape(x.shape[0], -1)
    if target.shape[1] != layers[-1].out_features:
        raise ValueError(
            f"decoder output size {layers[-1].out_features} does not match the data shape "
            f"{tuple(x.shape)}: expected (B, ...) with {layers[-1].out_features} values per sample"
        )
    with torch.no_grad():
        h, activations = z, []
        for layer in layers[:-1]:
            h = F.elu(torch.addmm(layer.bias, h, layer.weight.t()))
            activations.append(h)
        out = torch.addmm(layers[-1].bias, h, layers[-1].weight.t())
        pixels = out.shape[1]
        if loss == "bce":
            value = (F.softplus(out) - target * out).mean(1)
            g = (torch.sigmoid(out) - target) / pixels
        else:
            residual = out - target
            value = residual.square().mean(1)
            g = residual * (2.0 / pixels)
        g = g @ layers[-1].weight
        for layer, a in zip(reversed(layers[:-1]), reversed(activations)):
            g = (g * torch.where(a > 0, 1.0, a + 1.0)) @ layer.weight
    return value, g
