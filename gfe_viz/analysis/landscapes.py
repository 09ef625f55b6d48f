"""The loss landscape of a 2-D latent, l(x, D(z)) on a grid of z, and the encoding paths drawn on it.

With a 2-D latent the whole encoding problem of one image fits in a picture: the landscape is the
function the gradient flow descends, a path is what the solver did, and the decoded image at each
point of the path shows what the latent means. This module computes them as arrays;
:mod:`gfe_viz.viz.landscape` draws them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .._checks import check_positive, check_positive_int, check_tensor
from ..encode import encode
from ..flows import GradientFlow
from ..solution import EncodeResult, Status
from ..solvers import Solver


@dataclass
class Landscape:
    """Loss of one target on a regular grid of 2-D latents: ``loss[j, i]`` is at ``(z1[i], z2[j])``."""

    z1: np.ndarray
    z2: np.ndarray
    loss: np.ndarray

    def argmin(self) -> np.ndarray:
        """The grid point with the lowest loss, as (z1, z2)."""
        j, i = np.unravel_index(np.argmin(self.loss), self.loss.shape)
        return np.array([self.z1[i], self.z2[j]])


@dataclass
class FlowPath:
    """One sample's recorded encode, as a view draws it: the times (K,), positions (K, 2) and
    losses (K,) of its path, and the numbers of :func:`result_summary`."""

    t: np.ndarray
    path: np.ndarray
    loss: np.ndarray
    summary: dict[str, float | int | str]


def loss_landscape(
    decoder: nn.Module,
    x: torch.Tensor,
    limits: tuple[float, float, float, float],
    resolution: int = 61,
    loss: str = "bce",
) -> Landscape:
    """l(x, D(z)) for one target ``x`` (shape (1, ...)) on a ``resolution``² grid over ``limits``.

    ``limits`` is (z1_min, z1_max, z2_min, z2_max). The grid is decoded in one batch.
    """
    x = one_target(x)
    _check_limits(limits)
    check_positive_int("resolution", resolution)
    check_latent_2d(decoder)
    z1 = torch.linspace(limits[0], limits[1], resolution, dtype=x.dtype)
    z2 = torch.linspace(limits[2], limits[3], resolution, dtype=x.dtype)
    grid = torch.stack(torch.meshgrid(z1, z2, indexing="xy"), dim=-1).reshape(-1, 2)
    flow = GradientFlow(decoder, loss=loss)
    with torch.no_grad():
        values = flow.loss(grid, x.expand(grid.shape[0], *x.shape[1:]))
    return Landscape(z1=z1.numpy(), z2=z2.numpy(), loss=values.reshape(resolution, resolution).numpy())


def latent_limits(points: torch.Tensor | np.ndarray, margin: float = 0.5) -> tuple[float, float, float, float]:
    """A square box around 2-D ``points`` (N, 2), padded by ``margin`` times its side on every edge."""
    points = _points(points)
    check_positive("margin", margin)
    low, high = points.min(0), points.max(0)
    center, side = (low + high) / 2, max(float((high - low).max()), 1e-3)
    half = side * (0.5 + margin)
    return (float(center[0] - half), float(center[0] + half), float(center[1] - half), float(center[1] + half))


def encoded_limits(
    decoder: nn.Module, images: torch.Tensor, solver: Solver, tau: float, loss: str = "bce", margin: float = 0.5
) -> tuple[float, float, float, float]:
    """:func:`latent_limits` around the origin and every image's z* (``images`` encoded from 0 in one
    batch): one box that holds the paths from 0 of all of them, for a view that shares it."""
    with torch.no_grad():
        centers = encode(decoder, images, solver=solver, tau=tau, loss=loss).z
    return latent_limits(torch.cat([centers, torch.zeros(1, 2, dtype=centers.dtype)]).numpy(), margin=margin)


def covering_limits(
    limits: tuple[float, float, float, float], points: torch.Tensor | np.ndarray, growth: float = 1.5
) -> tuple[float, float, float, float]:
    """``limits`` if they hold every one of ``points`` (N, 2), else that box grown about its centre by
    powers of ``growth`` (> 1) until they do.

    A view that keeps one box per image while the box holds its paths reuses that landscape, and
    the few larger boxes it grows into are shared by every setting whose paths fit them.
    """
    _check_limits(limits)
    points = _points(points)
    if not growth > 1:
        raise ValueError(f"growth must be a number > 1, got {growth!r}")
    center = np.array([limits[0] + limits[1], limits[2] + limits[3]]) / 2
    half = np.array([limits[1] - limits[0], limits[3] - limits[2]]) / 2
    reach = float((np.abs(points - center) / half).max())  # 1: on the box's edge
    if reach <= 1:
        return tuple(float(v) for v in limits)
    half = half * growth ** int(np.ceil(np.log(reach) / np.log(growth)))
    return (
        float(center[0] - half[0]),
        float(center[0] + half[0]),
        float(center[1] - half[1]),
        float(center[1] + half[1]),
    )


def sample_path(result: EncodeResult, sample: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Times (K,) and positions (K, 2) that sample ``sample`` visited, from a recorded encode.

    For AMD these are the accepted steps; for the classical solvers the saved times (finite ones).
    """
    if result.trajectory is None:
        raise ValueError("result has no trajectory: encode with record=True")
    if not 0 <= sample < result.z.shape[0]:
        raise ValueError(f"sample must be in [0, {result.z.shape[0]}), got {sample!r}")
    t, z = result.trajectory.sample(sample)
    return t.double().numpy(), z.double().numpy()


def flow_path(
    decoder: nn.Module,
    x: torch.Tensor,
    solver: Solver,
    z0: tuple[float, float],
    tau: float,
    alpha_schedule: str = "constant",
    loss: str = "bce",
) -> FlowPath:
    """Encode one target ``x`` (1, ...) from ``z0`` with ``solver`` (recorded) and keep its path.

    The loss and its gradient are the hand-written ones where the decoder is an MLP (``gradient="auto"``):
    equal to autograd's to rounding, a third cheaper per evaluation.
    """
    x = one_target(x)
    result = encode(
        decoder,
        x,
        solver=solver,
        loss=loss,
        z0=torch.tensor([z0], dtype=x.dtype),
        tau=tau,
        record=True,
        alpha_schedule=alpha_schedule,
        gradient="auto",
    )
    t, path = sample_path(result)
    return FlowPath(
        t=t, path=path, loss=result.trajectory.sample_loss(0).double().numpy(), summary=result_summary(result)
    )


def path_losses(decoder: nn.Module, x: torch.Tensor, path: np.ndarray, loss: str = "bce") -> np.ndarray:
    """l(x, D(z)) at each point of ``path`` (K, 2) for one target ``x`` (1, ...), as (K,)."""
    x = one_target(x)
    with torch.no_grad():
        return (
            GradientFlow(decoder, loss=loss)
            .loss(torch.as_tensor(path, dtype=x.dtype), x.expand(len(path), *x.shape[1:]))
            .numpy()
        )


def decoded_images(decoder: nn.Module, z: torch.Tensor | np.ndarray, loss: str = "bce") -> np.ndarray:
    """What latents ``z`` (K, d) decode to, as (K, H, W) images: sigmoid of the logits for BCE."""
    dtype = next(decoder.parameters(), torch.empty(0)).dtype
    z = torch.as_tensor(np.asarray(z), dtype=dtype)
    with torch.no_grad():
        out = decoder(z)
    out = torch.sigmoid(out) if loss == "bce" else out
    return as_images(out).numpy()


def result_summary(result: EncodeResult, sample: int = 0) -> dict[str, float | int | str]:
    """The numbers a view reports about one sample of an encode: loss, NFE, steps, status, z*."""
    z = result.z[sample].tolist()
    return {
        "loss": float(result.loss[sample]),
        "nfe": int(result.stats.nfe[sample]),
        "accepted": int(result.stats.accepted[sample]),
        "rejected": int(result.stats.rejected[sample]),
        "t_end": float(result.stats.t[sample]),
        "status": Status(int(result.status[sample])).name.lower(),
        **{f"z*_{k + 1}": float(v) for k, v in enumerate(z)},
    }


def as_images(out: torch.Tensor) -> torch.Tensor:
    """Single-channel outputs (K, H, W) or (K, 1, H, W) as (K, H, W)."""
    images = out.reshape(out.shape[0], *[s for s in out.shape[1:] if s != 1]) if out.dim() > 3 else out
    if images.dim() != 3:
        raise ValueError(f"expected single-channel images (K, H, W) or (K, 1, H, W), got shape {tuple(out.shape)}")
    return images


def one_target(x: torch.Tensor, what: str = "target") -> torch.Tensor:
    """``x`` checked to be a finite tensor holding one sample, shape (1, ...)."""
    x = check_tensor("x", x)
    if x.shape[0] != 1:
        raise ValueError(f"x must hold one {what}, shape (1, ...), got {tuple(x.shape)}")
    return x


def check_latent_2d(decoder: nn.Module) -> None:
    """Refuse a decoder that is not a module with a 2-D latent (a landscape needs one)."""
    if not isinstance(decoder, nn.Module):
        raise TypeError(f"decoder must be a torch.nn.Module, got {type(decoder).__name__}")
    if getattr(decoder, "latent_dim", 2) != 2:
        raise ValueError(f"decoder must have a 2-D latent to draw a landscape, got latent_dim={decoder.latent_dim}")


def _points(points: torch.Tensor | np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=float)
    if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] == 0:
        raise ValueError(f"points must have shape (N, 2) with N >= 1, got {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("points must be finite")
    return points


def _check_limits(limits) -> None:
    if (
        not isinstance(limits, (tuple, list))
        or len(limits) != 4
        or not limits[0] < limits[1]
        or not limits[2] < limits[3]
    ):
        raise ValueError(f"limits must be (z1_min, z1_max, z2_min, z2_max) with min < max, got {limits!r}")
