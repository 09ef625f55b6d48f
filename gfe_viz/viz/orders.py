"""Figures of first- versus second-order gradient flows, and notebook 3's view.

The second-order flow z'' + (3/t) z' + alpha grad l = 0 carries momentum: a flat direction is
crossed faster, at the price of overshooting and oscillating. The runs and the closed forms on a
quadratic come from :mod:`gfe_viz.analysis` (``solver_runs``, ``known_solutions``); here they
become a landscape with both paths, loss against NFE, and z(t) against the exact solutions.
"""

from __future__ import annotations

import math
from functools import lru_cache

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from torch import nn

from .._checks import check_positive, check_tensor
from ..amd import AMD_MNIST, AMDOptions
from ..analysis.known_solutions import damping_factor, quadratic_runs, quadratic_solution
from ..analysis.landscapes import Landscape, covering_limits, latent_limits, loss_landscape, sample_path
from ..analysis.solver_runs import ORDER_NAMES, SolverRun, compare_orders, orders_summary
from ..style import PATH_COLORS
from .interactive import InteractiveView, interactive_view, prerender_all
from .landscape import landscape_heatmap, path_traces
from .plotting import compact

AMD_TO_TAU = AMD_MNIST.replace(conv_tol=0.0)  # AMD without its convergence stop: every run reaches tau


def orders_figure(landscape: Landscape, runs: list[SolverRun], sample: int = 0) -> go.Figure:
    """Left: each run's path of ``sample`` on the landscape. Right: that sample's loss against NFE.

    Traces: the landscape, two per path (line, start/end markers), then one "<name>: loss" line per run.
    """
    figure = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.55, 0.45],
        horizontal_spacing=0.2,
        subplot_titles=("paths on the loss landscape", "loss against decoder evaluations"),
    )
    figure.add_trace(landscape_heatmap(landscape, colorbar_x=0.46), 1, 1)
    for k, run in enumerate(runs):
        color = PATH_COLORS[(k + 1) % len(PATH_COLORS)]
        for trace in path_traces(run.name, sample_path(run.result, sample)[1], color):
            figure.add_trace(trace, 1, 1)
        figure.add_trace(
            go.Scatter(
                x=compact(run.nfe[:, sample]),
                y=compact(run.loss[:, sample]),
                mode="lines",
                name=f"{run.name}: loss",
                line=dict(color=color, width=2),
            ),
            1,
            2,
        )
    figure.update_xaxes(title_text="z₁", range=[landscape.z1[0], landscape.z1[-1]], row=1, col=1)
    figure.update_yaxes(title_text="z₂", range=[landscape.z2[0], landscape.z2[-1]], scaleanchor="x", row=1, col=1)
    figure.update_xaxes(title_text="NFE", type="log", row=1, col=2)
    figure.update_yaxes(title_text="loss", type="log", row=1, col=2)
    figure.update_layout(width=1000, height=470, legend=dict(orientation="h", y=-0.18), plot_bgcolor="white")
    return figure


def orders_view(
    decoder: nn.Module,
    images: torch.Tensor,
    tau: float = 1e4,
    amd: AMDOptions = AMD_MNIST,
    resolution: int = 61,
    loss: str = "bce",
    precompute: bool = True,
) -> InteractiveView:
    """Notebook view: both orders on one image's landscape. Controls: ``image``, ``tau`` (decades
    from 10 to 1e5), ``dt_max``.

    Each image keeps one landscape, on a box around both paths at the default settings, while the
    paths fit in it; paths that leave it get that box grown (and shared by all settings that fit
    the larger box). The runs are kept by settings apart from the figures. With ``precompute``,
    the view renders every image, tau and dt_max at the other controls' defaults when it is built:
    tau = 1e5 costs the second order thousands of decoder evaluations, dt_max = 1 hundreds.
    """
    images = check_tensor("images", images, min_dim=2)
    check_positive("tau", tau)
    tau_default = tau

    @lru_cache(maxsize=64)
    def runs_at(image: int, tau: float, dt_max: float) -> list[SolverRun]:
        return compare_orders(
            decoder,
            images[image : image + 1],
            tau=tau,
            amd=amd.replace(dt_max=max(dt_max, amd.dt0)),
            loss=loss,
            gradient="auto",
        )

    def visited(runs: list[SolverRun]) -> np.ndarray:
        return np.concatenate([sample_path(run.result)[1] for run in runs])

    @lru_cache(maxsize=64)
    def landscape_in(image: int, limits: tuple[float, float, float, float]) -> Landscape:
        return loss_landscape(decoder, images[image : image + 1], limits, resolution, loss)

    def render(image, tau, dt_max):
        runs = runs_at(image, tau, dt_max)
        box = latent_limits(visited(runs_at(image, tau_default, amd.dt_max)), margin=0.15)
        landscape = landscape_in(image, covering_limits(box, visited(runs)))
        return orders_figure(landscape, runs), orders_summary(runs)

    controls = {
        "image": widgets.IntSlider(value=0, min=0, max=images.shape[0] - 1, description="image"),
        "tau": widgets.FloatLogSlider(value=tau, base=10, min=1, max=5, step=1, description="tau"),
        "dt_max": widgets.FloatLogSlider(value=amd.dt_max, base=10, min=0, max=3, step=0.25, description="dt_max"),
    }
    view = interactive_view(render, controls)
    if precompute:
        prerender_all(view, ("image", "tau", "dt_max"))
    return view


# --- the 3/t damping on a quadratic ---------------------------------------------------------------------
def damping_figure(
    lam: float = 0.01,
    tau: float = 1000.0,
    amd: AMDOptions = AMD_TO_TAU,
    dts: tuple[float, ...] = (1.0, 10.0),
) -> go.Figure:
    """Left: z(t) on a quadratic, exact for both orders and AMD's steps. Right: velocity kept per step.

    The default AMD settings are the MNIST ones without the convergence test, so both runs go on to tau.

    Traces (left): "first order, exact", "second order, exact", "first order, AMD", "second order,
    AMD"; (right) one "dt = ..." line per step size in ``dts``.
    """
    runs = quadratic_runs(lam, tau, amd)
    t = np.linspace(0.0, tau, 400)
    figure = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.12,
        subplot_titles=(f"z(t) on l = λz²/2, λ = {lam:g}", "velocity kept by one step of length dt"),
    )
    for k, (order, run) in enumerate(zip(ORDER_NAMES, runs)):
        color = PATH_COLORS[k + 1]
        figure.add_trace(
            go.Scatter(
                x=t,
                y=quadratic_solution(lam, t, order),
                mode="lines",
                name=f"{run.name}, exact",
                line=dict(color=color, width=2),
            ),
            1,
            1,
        )
        times, path = sample_path(run.result)
        figure.add_trace(
            go.Scatter(
                x=compact(times),
                y=compact(path[:, 0]),
                mode="markers",
                name=f"{run.name}, AMD",
                marker=dict(color=color, size=6, symbol="circle-open"),
            ),
            1,
            1,
        )
    t_right = np.logspace(-1, math.log10(tau), 200)
    for dt in dts:
        figure.add_trace(go.Scatter(x=t_right, y=damping_factor(t_right, dt), mode="lines", name=f"dt = {dt:g}"), 1, 2)
    figure.update_xaxes(title_text="t", row=1, col=1)
    figure.update_yaxes(title_text="z(t)", row=1, col=1)
    figure.update_xaxes(title_text="t (start of the step)", type="log", row=1, col=2)
    figure.update_yaxes(title_text="((t+ε)/(t+dt+ε))³", range=[0, 1.02], row=1, col=2)
    figure.update_layout(width=1000, height=430, legend=dict(orientation="h", y=-0.2))
    return figure
