"""Problems with known solutions: the first- and second-order flows on a quadratic, and the 3/t damping.

On the quadratic l = lam z^2 / 2 both flows have closed forms (from z(0) = z0 at rest):

    first order:   z(t) = z0 exp(-lam t)
    second order:  z(t) = z0 * 2 J1(w t) / (w t),   w = sqrt(lam)   (J1: Bessel function)

so a flat direction (small lam) is crossed in time ~1/sqrt(lam) instead of ~1/lam, at the price
of overshooting and oscillating, with an amplitude that decays like t^(-3/2) because the
friction 3/t fades. The tests hold the library's flows to these forms; notebook 3 draws them.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .._checks import check_positive
from ..amd import AMD_MNIST, AMDOptions
from ..flows import DAMPING_EPS
from ..models import LinearDecoder
from .solver_runs import SolverRun, compare_orders


def quadratic_solution(lam: float, t, order: int, z0: float = 1.0) -> np.ndarray:
    """Exact z(t) of the first- or second-order flow on l = lam z^2 / 2 from z0 at rest (see module doc)."""
    check_positive("lam", lam)
    t = np.asarray(t, dtype=float)
    if order == 1:
        return z0 * np.exp(-lam * t)
    if order != 2:
        raise ValueError(f"order must be 1 or 2, got {order!r}")
    wt = torch.as_tensor(math.sqrt(lam) * t, dtype=torch.float64)
    safe = torch.where(wt == 0, torch.ones_like(wt), wt)
    ratio = torch.where(wt == 0, torch.ones_like(wt), 2 * torch.special.bessel_j1(safe) / safe)
    return z0 * ratio.numpy()


def quadratic_decoder(lam: float) -> LinearDecoder:
    """A 1-D linear decoder whose MSE to the target 0 is l = lam z^2 / 2 (D(z) = sqrt(lam / 2) z)."""
    check_positive("lam", lam)
    return LinearDecoder(torch.full((1, 1), math.sqrt(lam / 2), dtype=torch.float64))


def quadratic_runs(lam: float, tau: float, amd: AMDOptions = AMD_MNIST, z0: float = 1.0) -> list[SolverRun]:
    """Both orders encoded with AMD on the quadratic l = lam z^2 / 2 (MSE of :func:`quadratic_decoder`)."""
    decoder = quadratic_decoder(lam)
    x = torch.zeros(1, 1, dtype=torch.float64)
    start = torch.full((1, 1), float(z0), dtype=torch.float64)
    return compare_orders(decoder, x, tau=tau, amd=amd, loss="mse", z0=start)


def damping_factor(t, dt: float) -> np.ndarray:
    """The fraction of its velocity the second-order AMD step keeps over [t, t + dt]: ((t+eps)/(t+dt+eps))^3."""
    check_positive("dt", dt)
    t = np.asarray(t, dtype=float)
    return ((t + DAMPING_EPS) / (t + dt + DAMPING_EPS)) ** 3
