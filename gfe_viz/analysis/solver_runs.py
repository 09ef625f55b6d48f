"""One solve of a batch with its loss history, for every solver alike: what the solver lab and the
order comparison draw; AMD against the classical solvers on the same batch; the runs of both flows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .._checks import check_positive, check_tensor
from ..amd import AMD_MNIST, AMDOptions
from ..encode import encode
from ..solution import EncodeResult
from ..solvers import FIXED_STEP, Solver


@dataclass
class SolverRun:
    """One solve of a batch with its loss history: row k of ``t``, ``nfe``, ``loss`` (K, B) is a point in time.

    ``nfe[k, i]``: decoder evaluations sample i had cost when it was at ``t[k, i]`` with loss
    ``loss[k, i]``; the last row matches ``result.stats.nfe``.
    """

    name: str
    result: EncodeResult
    t: np.ndarray
    nfe: np.ndarray
    loss: np.ndarray

    def mean_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean NFE per sample (K,) and batch-mean loss (K,) at each row."""
        return self.nfe.mean(1), self.loss.mean(1)

    def nfe_to_reach(self, target: float) -> float | None:
        """The mean NFE per sample at which the batch-mean loss first is <= ``target``; None if never."""
        nfe, loss = self.mean_curve()
        hit = np.flatnonzero(loss <= target)
        return float(nfe[hit[0]]) if hit.size else None


def run_solver(
    decoder: nn.Module,
    x: torch.Tensor,
    solver: str | Solver = "amd",
    tau: float = 1e4,
    loss: str = "bce",
    z0: str | torch.Tensor = "zeros",
    name: str | None = None,
    **options,
) -> SolverRun:
    """Encode ``x`` with ``solver`` (a solver object or its name, options as for :func:`gfe_viz.encode`)
    and keep its loss history, which the recorded result carries (``result.trajectory``).

    AMD: one row per attempt, the loss carried forward from the last accepted attempt. Classical
    solvers: one row per saved time (``n_save``, default 101), the loss evaluated there, and the
    evaluations spent to get there (euler 1 and rk4 4 per step of ``dt``; dopri5 from its step log).
    """
    x = check_tensor("x", x)
    if solver in FIXED_STEP and "dt" not in options:
        raise ValueError(f"solver {solver!r} needs a step: pass dt=... (> 0)")
    result = encode(decoder, x, solver=solver, tau=tau, loss=loss, z0=z0, record=True, **options)
    traj = result.trajectory
    return SolverRun(
        name=name or result.solver,
        result=result,
        t=traj.t.double().numpy(),
        nfe=traj.nfe.double().numpy(),
        loss=traj.loss.double().numpy(),
    )


def amd_summary(result: EncodeResult) -> dict[str, float | int]:
    """Batch numbers of an AMD solve: mean loss, mean and max NFE, attempts accepted/rejected/forced, statuses."""
    return {
        "mean_loss": float(result.loss.double().mean()),
        "mean_nfe": float(result.stats.nfe.double().mean()),
        "max_nfe": int(result.stats.nfe.max()),
        "accepted": int(result.stats.accepted.sum()),
        "rejected": int(result.stats.rejected.sum()),
        "forced": int(result.stats.forced.sum()),
        **result.status_counts(),
    }


def compare_solvers(
    decoder: nn.Module,
    x: torch.Tensor,
    tau: float = 1e4,
    euler_dt: float = 5.0,
    rk4_dt: float = 10.0,
    rtol: float = 1e-5,
    atol: float = 1e-7,
    amd: AMDOptions = AMD_MNIST,
    loss: str = "bce",
    n_save: int = 101,
) -> list[SolverRun]:
    """Solve the same batch with AMD, euler (``euler_dt``), rk4 (``rk4_dt``) and dopri5 (``rtol``, ``atol``)."""
    common = dict(tau=tau, loss=loss)
    return [
        run_solver(decoder, x, "amd", amd=amd, **common),
        run_solver(decoder, x, "euler", dt=euler_dt, n_save=n_save, name=f"euler dt={euler_dt:g}", **common),
        run_solver(decoder, x, "rk4", dt=rk4_dt, n_save=n_save, name=f"rk4 dt={rk4_dt:g}", **common),
        run_solver(decoder, x, "dopri5", rtol=rtol, atol=atol, n_save=n_save, name=f"dopri5 rtol={rtol:g}", **common),
    ]


def target_loss(runs: list[SolverRun], target: float | None = None) -> float:
    """The batch-mean loss the runs are compared at: ``target``, or by default the first AMD run's final loss."""
    if not runs:
        raise ValueError("runs must hold at least one SolverRun, got an empty list")
    if target is None:
        amd_runs = [run for run in runs if run.result.solver == "amd"]
        if not amd_runs:
            raise ValueError("target is None and no run is an AMD run: pass target=...")
        return float(amd_runs[0].loss[-1].mean())
    check_positive("target", target)
    return float(target)


def nfe_to_target(runs: list[SolverRun], target: float | None = None) -> dict[str, float | None]:
    """Mean NFE per sample each run needs for a batch-mean loss <= ``target`` (default: AMD's final loss)."""
    target = target_loss(runs, target)
    return {run.name: run.nfe_to_reach(target) for run in runs}


ORDER_NAMES = {1: "first order", 2: "second order"}


def compare_orders(
    decoder: nn.Module,
    x: torch.Tensor,
    tau: float = 1e4,
    solver: str = "amd",
    amd: AMDOptions = AMD_MNIST,
    loss: str = "bce",
    z0: str | torch.Tensor = "zeros",
    **options,
) -> list[SolverRun]:
    """Encode ``x`` with the first- and the second-order flow (options as for :func:`run_solver`; ``amd`` for AMD)."""
    if solver == "amd":
        options["amd"] = amd
    return [
        run_solver(decoder, x, solver, tau=tau, loss=loss, z0=z0, order=order, name=name, **options)
        for order, name in ORDER_NAMES.items()
    ]


def orders_summary(runs: list[SolverRun]) -> dict[str, float | int]:
    """Per run: batch-mean final loss, mean NFE per sample and rejected attempts (momentum restarts for order 2)."""
    out: dict[str, float | int] = {}
    for run in runs:
        stats = run.result.stats
        out[f"{run.name} loss"] = float(run.result.loss.double().mean())
        out[f"{run.name} nfe"] = float(stats.nfe.double().mean())
        out[f"{run.name} rejected"] = int(stats.rejected.sum())
    return out
