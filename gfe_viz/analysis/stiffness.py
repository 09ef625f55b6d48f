"""Stiffness: where a fixed Euler step stops being stable on the latent loss, and a scan of Euler steps
that shows it (what the solver lab's stiffness section computes)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .._checks import check_positive_int, check_tensor
from ..flows import GradientFlow
from .solver_runs import run_solver


def hessian_eigenvalues(decoder: nn.Module, x: torch.Tensor, z: torch.Tensor, loss: str = "bce") -> torch.Tensor:
    """Ascending eigenvalues (B, d) of each sample's Hessian of l(x, D(z)) in z (d backward passes)."""
    x, z = check_tensor("x", x), check_tensor("z", z, min_dim=2)
    flow = GradientFlow(decoder, loss=loss)
    with torch.enable_grad():
        z = z.detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(flow.loss(z, x).sum(), z, create_graph=True)
        rows = [torch.autograd.grad(grad[:, j].sum(), z, retain_graph=True)[0] for j in range(z.shape[1])]
    hessian = torch.stack(rows, dim=1).detach()
    return torch.linalg.eigvalsh((hessian + hessian.transpose(1, 2)) / 2)


def euler_stability_limit(eigenvalues: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Per-sample largest stable Euler step 2 / (alpha * lambda_max) near a minimum (inf where flat)."""
    top = eigenvalues[:, -1].double() * alpha
    return torch.where(top > 0, 2.0 / top, torch.full_like(top, math.inf))


@dataclass
class EulerScan:
    """Euler with ``n_steps`` steps of each dt from the same start: final and best loss per sample, (n_dt, B)."""

    dts: np.ndarray
    final_loss: np.ndarray
    best_loss: np.ndarray
    limit: np.ndarray  #: (B,) predicted stability limits 2 / lambda_max

    def unstable(self, rtol: float = 1e-3) -> np.ndarray:
        """(n_dt, B): the loss ended above its best value along the way (Euler oscillates or diverges)."""
        return ~(self.final_loss <= self.best_loss * (1 + rtol))

    def blow_up_dt(self, rtol: float = 1e-3) -> float | None:
        """The smallest scanned dt at which some sample is unstable; None if none is."""
        bad = np.flatnonzero(self.unstable(rtol).any(1))
        return float(self.dts[bad[0]]) if bad.size else None


def euler_scan(
    decoder: nn.Module,
    x: torch.Tensor,
    dts,
    n_steps: int = 100,
    z_min: torch.Tensor | None = None,
    loss: str = "bce",
    z0: str | torch.Tensor = "zeros",
) -> EulerScan:
    """Run Euler with each step in ``dts`` for ``n_steps`` steps and record how its loss ends.

    ``z_min``, if given, are the latents where the stability limits 2/lambda_max are measured
    (e.g. AMD's z*); otherwise each sample's best point of the smallest-dt run.
    """
    x = check_tensor("x", x)
    check_positive_int("n_steps", n_steps)
    dts = np.sort(np.asarray(dts, dtype=float))
    if dts.ndim != 1 or dts.size == 0 or not (dts > 0).all() or not np.isfinite(dts).all():
        raise ValueError(f"dts must be a non-empty list of finite steps > 0, got {dts!r}")
    final, best, best_z = [], [], None
    for dt in dts:
        run = run_solver(
            decoder, x, "euler", tau=float(dt * n_steps), loss=loss, z0=z0, dt=float(dt), n_save=n_steps + 1
        )
        losses = np.where(np.isfinite(run.loss), run.loss, np.inf)
        final.append(losses[-1])
        best.append(losses.min(0))
        if best_z is None:
            rows = torch.as_tensor(losses.argmin(0))
            best_z = run.result.trajectory.z[rows, torch.arange(x.shape[0])]
    at = z_min if z_min is not None else best_z
    limit = euler_stability_limit(hessian_eigenvalues(decoder, x, at.to(x), loss))
    return EulerScan(dts=dts, final_loss=np.stack(final), best_loss=np.stack(best), limit=limit.numpy())
