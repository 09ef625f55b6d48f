"""What an encode returns: latents, per-sample loss and status, statistics, and optional logs."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .flows import GradientFlow


class Status(enum.IntEnum):
    """Per-sample outcome of a solve."""

    CONVERGED = 0  #: the loss stopped changing (AMD convergence test)
    REACHED_TAU = 1  #: integrated up to the horizon tau
    #: dt fell below its floor: reached tau through a forced step, or stopped there (AMD ``stop_at_underflow``,
    #: dopri5 below ``DT_FLOOR * tau``)
    STEP_UNDERFLOW = 2
    NON_FINITE = 3  #: the flow produced NaN or inf; z is the last state with a finite loss
    STEP_LIMIT = 4  #: stopped by the solver's step limit before converging or reaching tau


@dataclass
class SolverStats:
    """Per-sample counts, each a (B,) tensor. ``nfe``: decoder forward+backward evaluations."""

    nfe: torch.Tensor
    accepted: torch.Tensor
    rejected: torch.Tensor
    t: torch.Tensor  #: the time each sample's integration stopped at
    forced: torch.Tensor  #: AMD steps taken at the dt floor (\"failed to min dist\")


@dataclass
class StepLog:
    """Every attempted step, as (A, B) tensors for A attempts. Inactive samples: active False, dt 0, loss NaN."""

    t: torch.Tensor  #: time at the start of the attempt
    dt: torch.Tensor
    accepted: torch.Tensor
    loss: torch.Tensor  #: loss at the candidate point
    active: torch.Tensor

    def __len__(self) -> int:
        return self.t.shape[0]


@dataclass
class Trajectory:
    """Positions after every attempt, (A+1, B, d), and the times they belong to, (A+1, B); for the
    classical solvers, the saved states instead of the attempts.

    A rejected attempt repeats the previous position; :meth:`sample` keeps the accepted ones.
    """

    t: torch.Tensor
    z: torch.Tensor
    accepted: torch.Tensor  #: (A+1, B): True where the position is new (the first row is z0)
    #: (A+1, B): the loss at each position (NaN where a classical solve's state is not finite or it had stopped)
    loss: torch.Tensor
    #: (A+1, B): decoder evaluations the sample had cost when it was at each position
    nfe: torch.Tensor

    def sample(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Times (K,) and accepted positions (K, d) of sample ``i``, starting at z0."""
        keep = self.accepted[:, i]
        return self.t[keep, i], self.z[keep, i]

    def sample_loss(self, i: int) -> torch.Tensor:
        """The loss (K,) at each of the positions :meth:`sample` gives for sample ``i``."""
        return self.loss[self.accepted[:, i], i]


@dataclass
class EncodeResult:
    """The output of :func:`gfe_viz.encode`."""

    z: torch.Tensor  #: (B, d) final latents
    loss: torch.Tensor  #: (B,) per-sample loss at z
    status: torch.Tensor  #: (B,) :class:`Status` values
    stats: SolverStats
    solver: str  #: the solver's name (``Solver.name``)
    #: the flow the solver integrated, for adjoints and figures that evaluate the same loss and alpha(t)
    flow: GradientFlow
    state: torch.Tensor | None = None  #: the full final state (position and velocity for order 2)
    steps: StepLog | None = None
    trajectory: Trajectory | None = None

    def status_counts(self) -> dict[str, int]:
        """How many samples ended in each :class:`Status`, by name."""
        return {s.name.lower(): int((self.status == s).sum()) for s in Status}

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.status_counts().items() if v)
        return (
            f"EncodeResult(solver={self.solver!r}, batch={self.z.shape[0]}, latent_dim={self.z.shape[1]}, "
            f"mean_loss={self.loss.mean().item():.6g}, mean_nfe={self.stats.nfe.double().mean().item():.1f}, "
            f"status: {counts})"
        )
