"""How close the approximate adjoint is to the full one, as the encoding of a batch converges.

The approximate decoder gradient (d_theta l at a detached z*) drops the trajectory term of the
full adjoint; that term vanishes when z* is a stationary point of l(x, D(z)). Solving one batch
for longer and longer horizons tau moves z* towards stationarity, and the two gradients can be
compared at every horizon: their cosine similarity, their norm ratio, and how far z* still is
from stationary (the norm of grad_z l at z*).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ._checks import check_positive_int
from .adjoint import approximate_adjoint_gradient, full_adjoint_gradient
from .amd import AMD_MNIST, AMDOptions
from .encode import _latent_dim, encode, initial_latents


@dataclass
class GradientComparison:
    """One entry per horizon; every array has shape (T,) except the sampled entries, (T, K)."""

    tau: np.ndarray
    cosine: np.ndarray  #: cosine similarity of the approximate and full decoder gradients
    norm_ratio: np.ndarray  #: ||approximate|| / ||full||
    grad_norm: np.ndarray  #: mean over the batch of ||grad_z l(x, D(z*))||: 0 at a stationary point
    loss: np.ndarray  #: training loss at z* (batch mean)
    nfe: np.ndarray  #: mean encoder NFE per sample
    approx_entries: np.ndarray  #: the same K randomly chosen gradient entries at every horizon
    full_entries: np.ndarray


def gradient_agreement(approx: Sequence[torch.Tensor], full: Sequence[torch.Tensor]) -> tuple[float, float]:
    """Cosine similarity and norm ratio ||approx|| / ||full|| of two gradients given per parameter."""
    if len(approx) != len(full) or not approx:
        raise ValueError(
            f"approx and full must list the same number (>= 1) of tensors, got {len(approx)} and {len(full)}"
        )
    a, f = _flat(approx), _flat(full)
    if a.shape != f.shape:
        raise ValueError(f"approx and full must have the same shapes, got {a.numel()} and {f.numel()} entries")
    na, nf = a.norm().item(), f.norm().item()
    cosine = float(a @ f) / (na * nf) if na > 0 and nf > 0 else float("nan")
    return cosine, na / nf if nf > 0 else float("inf")


def compare_adjoints(
    decoder: nn.Module,
    x: torch.Tensor,
    taus: Sequence[float],
    *,
    z0: str | torch.Tensor = "zeros",
    loss: str = "bce",
    amd: AMDOptions = AMD_MNIST,
    n_entries: int = 2000,
    seed: int = 0,
    **options,
) -> GradientComparison:
    """Encode the batch ``x`` with AMD up to each of ``taus`` and compare the two decoder gradients.

    Arguments:
        decoder: the decoder whose parameters get the gradients.
        x: (B, ...) one training batch.
        taus: horizons, each > 0; every solve starts from the same z0.
        z0, loss, amd, options: as in :func:`gfe_viz.encode` (e.g. ``conv_tol=0.0`` so that every
            solve runs to its tau instead of stopping at convergence); ``alpha`` and
            ``alpha_schedule`` shape the flow that both adjoints follow. The full adjoint is the
            first-order flow's, so ``order`` must be 1.
        n_entries: how many gradient entries (chosen once with ``seed``) to keep for scatter plots.
        seed: draws z0 when it is ``"uniform"`` and the kept entries.

    Returns:
        A :class:`GradientComparison`, ordered as ``taus``.
    """
    taus = _horizons(taus)
    check_positive_int("n_entries", n_entries)
    if options.get("order", 1) != 1:
        raise ValueError(f"order must be 1 (the full adjoint follows the first-order flow), got {options['order']!r}")
    generator = torch.Generator().manual_seed(seed)
    start = initial_latents(z0, x, _latent_dim(decoder, None), generator)
    params = list(decoder.parameters())
    n_params = sum(p.numel() for p in params)
    keep = torch.randperm(n_params, generator=generator)[:n_entries]
    rows = []
    for tau in taus:
        result = encode(decoder, x, z0=start, loss=loss, tau=tau, record=True, amd=amd, **options)
        flow = result.flow  # the flow the solve integrated: its loss and alpha(t)
        train_loss, full = full_adjoint_gradient(flow, x, result, params)
        _, approx = approximate_adjoint_gradient(flow, x, result.z, params)
        _, grad_z = flow.loss_and_grad(result.z, x)
        cosine, ratio = gradient_agreement(approx, full)
        rows.append(
            (
                tau,
                cosine,
                ratio,
                grad_z.norm(dim=1).mean().item(),
                train_loss.item(),
                result.stats.nfe.double().mean().item(),
                _flat(approx)[keep].numpy(),
                _flat(full)[keep].numpy(),
            )
        )
    columns = list(zip(*rows))
    return GradientComparison(
        *(np.array(c, dtype=float) for c in columns[:6]),
        approx_entries=np.stack(columns[6]),
        full_entries=np.stack(columns[7]),
    )


def _horizons(taus) -> list[float]:
    try:
        values = np.asarray(taus, dtype=float)
    except (TypeError, ValueError):
        values = np.array([])
    if values.ndim != 1 or values.size == 0 or not (np.isfinite(values) & (values > 0)).all():
        raise ValueError(f"taus must be a non-empty 1-D sequence of finite horizons > 0, got {taus!r}")
    return values.tolist()


def _flat(grads: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([g.detach().reshape(-1).double().cpu() for g in grads])
