"""First- versus second-order gradient flows: their paths, their cost, and what the 3/t damping does.

The second-order flow z'' + (3/t) z' + alpha grad l = 0 carries momentum. On the quadratic
l = lam z^2 / 2 both flows have closed forms (from z(0) = z0 at rest):

    first order:   z(t) = z0 exp(-lam t)
    second order:  z(t) = z0 * 2 J1(w t) / (w t),   w = sqrt(lam)   (J1: Bessel function)

so a flat direction (small lam) is crossed in time ~1/sqrt(lam) instead of ~1/lam, at the price
of overshooting and oscillating, with an amplitude that decays like t^(-3/2) because the
friction 3/t fades.
"""

from __future__ import annotations

import math

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from torch import nn

from .._checks import check_positive, check_tensor
from ..amd import AMD_MNIST, AMDOptions
from ..analysis.solver_runs import SolverRun, run_solver
from ..flows import DAMPING_EPS
from ..models import LinearDecoder
from .interactive import InteractiveView, interactive_view
from .landscape import (PATH_COLORS, Landscape, landscape_heatmap, latent_limits, loss_landscape, path_traces,
                        sample_path)
from .plotting import compact

ORDER_NAMES = {1: "first order", 2: "second order"}


def compare_orders(decoder: nn.Module, x: torch.Tensor, tau: float = 1e4, solver: str = "amd",
                   amd: AMDOptions = AMD_MNIST, loss: str = "bce", z0: str | torch.Tensor = "zeros",
                   **options) -> list[SolverRun]:
    """Encode ``x`` with the first- and the second-order flow (options as for :func:`run_solver`; ``amd`` for AMD)."""
    if solver == "amd":
        options["amd"] = amd
    return [run_solver(decoder, x, solver, tau=tau, loss=loss, z0=z0, order=order, name=name, **options)
            for order, name in ORDER_NAMES.items()]


def orders_figure(landscape: Landscape, runs: list[SolverRun], sample: int = 0) -> go.Figure:
    """Left: each run's path of ``sample`` on the landscape. Right: that sample's loss against NFE.

    Traces: the landscape, two per path (line, start/end markers), then one "<name>: loss" line per run.
    """
    figure = make_subplots(rows=1, cols=2, column_widths=[0.55, 0.45], horizontal_spacing=0.2,
                           subplot_titles=("paths on the loss landscape", "loss against decoder evaluations"))
    figure.add_trace(landscape_heatmap(landscape, colorbar_x=0.46), 1, 1)
    for k, run in enumerate(runs):
        color = PATH_COLORS[(k + 1) % len(PATH_COLORS)]
        for trace in path_traces(run.name, sample_path(run.result, sample)[1], color):
            figure.add_trace(trace, 1, 1)
        figure.add_trace(go.Scatter(x=compact(run.nfe[:, sample]), y=compact(run.loss[:, sample]), mode="lines",
                                    name=f"{run.name}: loss", line=dict(color=color, width=2)), 1, 2)
    figure.update_xaxes(title_text="z₁", range=[landscape.z1[0], landscape.z1[-1]], row=1, col=1)
    figure.update_yaxes(title_text="z₂", range=[landscape.z2[0], landscape.z2[-1]], scaleanchor="x", row=1, col=1)
    figure.update_xaxes(title_text="NFE", type="log", row=1, col=2)
    figure.update_yaxes(title_text="loss", type="log", row=1, col=2)
    figure.update_layout(width=1000, height=470, legend=dict(orientation="h", y=-0.18), plot_bgcolor="white")
    return figure


def orders_summary(runs: list[SolverRun]) -> dict[str, float | int]:
    """Per run: batch-mean final loss, mean NFE per sample and rejected attempts (momentum restarts for order 2)."""
    out: dict[str, float | int] = {}
    for run in runs:
        stats = run.result.stats
        out[f"{run.name} loss"] = float(run.result.loss.double().mean())
        out[f"{run.name} nfe"] = float(stats.nfe.double().mean())
        out[f"{run.name} rejected"] = int(stats.rejected.sum())
    return out


def orders_view(decoder: nn.Module, images: torch.Tensor, tau: float = 1e4, amd: AMDOptions = AMD_MNIST,
                resolution: int = 61, loss: str = "bce") -> InteractiveView:
    """Notebook view: both orders on one image's landscape. Controls: ``image``, ``tau``, ``dt_max``.

    The landscape is computed for each figure, on a box around both paths.
    """
    images = check_tensor("images", images, min_dim=2)
    check_positive("tau", tau)

    def render(image, tau, dt_max):
        x = images[image:image + 1]
        runs = compare_orders(decoder, x, tau=tau, amd=amd.replace(dt_max=max(dt_max, amd.dt0)), loss=loss)
        visited = np.concatenate([sample_path(run.result)[1] for run in runs])
        landscape = loss_landscape(decoder, x, latent_limits(visited, margin=0.15), resolution, loss)
        return orders_figure(landscape, runs), orders_summary(runs)

    controls = {
        "image": widgets.IntSlider(value=0, min=0, max=images.shape[0] - 1, description="image"),
        "tau": widgets.FloatLogSlider(value=tau, base=10, min=1, max=5, step=0.25, description="tau"),
        "dt_max": widgets.FloatLogSlider(value=amd.dt_max, base=10, min=0, max=3, step=0.25, description="dt_max"),
    }
    return interactive_view(render, controls)


# --- the 3/t damping on a quadratic ---------------------------------------------------------------------
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


def damping_figure(lam: float = 0.01, tau: float = 1000.0, amd: AMDOptions = AMD_MNIST.replace(conv_tol=0.0),
                   dts: tuple[float, ...] = (1.0, 10.0)) -> go.Figure:
    """Left: z(t) on a quadratic, exact for both orders and AMD's steps. Right: velocity kept per step.

    The default AMD settings are the MNIST ones without the convergence test, so both runs go on to tau.

    Traces (left): "first order, exact", "second order, exact", "first order, AMD", "second order,
    AMD"; (right) one "dt = ..." line per step size in ``dts``.
    """
    runs = quadratic_runs(lam, tau, amd)
    t = np.linspace(0.0, tau, 400)
    figure = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, subplot_titles=(
        f"z(t) on l = λz²/2, λ = {lam:g}", "velocity kept by one step of length dt"))
    for k, (order, run) in enumerate(zip(ORDER_NAMES, runs)):
        color = PATH_COLORS[k + 1]
        figure.add_trace(go.Scatter(x=t, y=quadratic_solution(lam, t, order), mode="lines",
                                    name=f"{run.name}, exact", line=dict(color=color, width=2)), 1, 1)
        times, path = sample_path(run.result)
        figure.add_trace(go.Scatter(x=compact(times), y=compact(path[:, 0]), mode="markers", name=f"{run.name}, AMD",
                                    marker=dict(color=color, size=6, symbol="circle-open")), 1, 1)
    t_right = np.logspace(-1, math.log10(tau), 200)
    for dt in dts:
        figure.add_trace(go.Scatter(x=t_right, y=damping_factor(t_right, dt), mode="lines", name=f"dt = {dt:g}"), 1, 2)
    figure.update_xaxes(title_text="t", row=1, col=1)
    figure.update_yaxes(title_text="z(t)", row=1, col=1)
    figure.update_xaxes(title_text="t (start of the step)", type="log", row=1, col=2)
    figure.update_yaxes(title_text="((t+ε)/(t+dt+ε))³", range=[0, 1.02], row=1, col=2)
    figure.update_layout(width=1000, height=430, legend=dict(orientation="h", y=-0.2))
    return figure
