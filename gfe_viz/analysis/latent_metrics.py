"""The latent-space lesson's numerics: codes of GFE and the AE, how well they sort the classes, the
point between two codes, and one image encoded from many random starts.

A GFE "model" is its decoder (codes come from :func:`gfe_viz.encode`), an AE is an
:class:`~gfe_viz.models.Autoencoder` (codes come from its encoder).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .._checks import check_non_negative, check_positive, check_positive_int, check_tensor
from ..demo_models import DEMO_ENCODING
from ..encode import encode
from ..flows import GradientFlow
from ..models import Autoencoder
from ..solution import EncodeResult
from ..training import EncodeSettings
from .landscapes import one_target


def decoder_of(model: nn.Module) -> nn.Module:
    """The decoder of an :class:`Autoencoder`, or the model itself (a GFE decoder)."""
    return model.decoder if isinstance(model, Autoencoder) else model


def latent_codes(
    model: nn.Module, images: torch.Tensor, encoding: EncodeSettings = DEMO_ENCODING, seed: int = 0
) -> torch.Tensor:
    """Codes (N, d) of ``images``: the AE's encoder output, or GFE's z* with ``encoding`` (z0 drawn from ``seed``)."""
    images = check_tensor("images", images, min_dim=2)
    with torch.no_grad():
        if isinstance(model, Autoencoder):
            return model.encode(images)
        return encode(
            model, images, z0=encoding.z0, generator=torch.Generator().manual_seed(seed), **encoding.kwargs()
        ).z


def neighbour_accuracy(codes: torch.Tensor, labels: torch.Tensor, k: int = 5) -> float:
    """The fraction of codes whose ``k`` nearest other codes vote (most often) for their own label.

    A number for how well a latent space sorts the classes without being told them; ties go to
    the smaller label.
    """
    check_positive_int("k", k)
    codes, labels = torch.as_tensor(codes, dtype=torch.float64), torch.as_tensor(labels)
    if codes.dim() != 2 or labels.shape != (codes.shape[0],) or not k < codes.shape[0]:
        raise ValueError(
            f"codes must have shape (N, d) with N > k={k} and labels shape (N,), "
            f"got {tuple(codes.shape)} and {tuple(labels.shape)}"
        )
    distance = torch.cdist(codes, codes).fill_diagonal_(float("inf"))
    neighbours = labels[distance.topk(k, largest=False).indices]
    votes = torch.nn.functional.one_hot(neighbours, int(labels.max()) + 1).sum(1)
    return (votes.argmax(1) == labels).double().mean().item()


@dataclass
class Interpolation:
    """The point z(s) = (1 - s) z_a + s z_b of one model, what it decodes to and its loss against both ends."""

    z: torch.Tensor  #: (d,)
    decoded: torch.Tensor  #: (1, ...) probabilities, the images' shape
    loss_a: float
    loss_b: float


def interpolate(
    model: nn.Module, z_a: torch.Tensor, z_b: torch.Tensor, s: float, x_a: torch.Tensor, x_b: torch.Tensor
) -> Interpolation:
    """Decode the point a fraction ``s`` of the way from code ``z_a`` to ``z_b`` and score it against
    the images ``x_a`` and ``x_b`` (each shape (...), one image) with the model's loss."""
    decoder = decoder_of(model)
    z = (1 - s) * z_a + s * z_b
    with torch.no_grad():
        decoded = torch.sigmoid(decoder(z[None])).reshape(1, *x_a.shape)
        losses = GradientFlow(decoder).loss(z[None].expand(2, -1), torch.stack([x_a, x_b]))
    return Interpolation(z=z, decoded=decoded, loss_a=float(losses[0]), loss_b=float(losses[1]))


def restart_encodings(
    decoder: nn.Module,
    x: torch.Tensor,
    n_restarts: int = 16,
    radius: float = 2.0,
    seed: int = 0,
    encoding: EncodeSettings = DEMO_ENCODING,
) -> EncodeResult:
    """Encode one image ``x`` (shape (1, ...)) from ``n_restarts`` starts z0 ~ U[-radius, radius]^d.

    The solves are recorded (``record=True``): ``result.trajectory.z[0]`` holds the starts.
    """
    x = one_target(x, "image")
    check_positive_int("n_restarts", n_restarts)
    check_positive("radius", radius)
    generator = torch.Generator().manual_seed(seed)
    z0 = (torch.rand(n_restarts, decoder.latent_dim, generator=generator, dtype=x.dtype) * 2 - 1) * radius
    with torch.no_grad():
        return encode(decoder, x.expand(n_restarts, *x.shape[1:]), z0=z0, record=True, **encoding.kwargs())


def distinct_endpoints(z: torch.Tensor, loss: torch.Tensor, tol: float) -> int:
    """How many groups the endpoints ``z`` (K, d) form when each joins the first lower-loss group
    centre (in order of ``loss``) within distance ``tol``, else starts a group."""
    check_non_negative("tol", tol)
    centres: list[torch.Tensor] = []
    for i in torch.argsort(loss).tolist():
        if not any(torch.dist(z[i], c) <= tol for c in centres):
            centres.append(z[i])
    return len(centres)


@dataclass
class Endpoints:
    """The endpoints of restarted encodes of one image, compared with the best (lowest-loss) one."""

    distance: np.ndarray  #: (K,) each z*'s distance from the best z*, in restart order
    decoded: torch.Tensor  #: (K, ...) what the z* decode to (probabilities), best first
    picture_change: torch.Tensor  #: (K,) mean per-pixel change of each decoded z* (best first) from the best one's
    distinct: int  #: groups of endpoints within ``tol`` (:func:`distinct_endpoints`)


def compare_endpoints(decoder: nn.Module, result: EncodeResult, tol: float) -> Endpoints:
    """How far the endpoints of ``result`` (one image's restarted encodes) lie from the best one,
    in latent space and in the pictures they decode to."""
    order = torch.argsort(result.loss)
    distance = (result.z - result.z[order[0]]).norm(dim=1).numpy()
    with torch.no_grad():
        decoded = torch.sigmoid(decoder(result.z[order]))
    change = (decoded - decoded[0]).flatten(1).abs().mean(1)
    return Endpoints(
        distance=distance,
        decoded=decoded,
        picture_change=change,
        distinct=distinct_endpoints(result.z, result.loss, tol),
    )
