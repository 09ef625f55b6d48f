"""The AMD solver lab's figures and view: every attempt of one batch, its cost, and the classical solvers beside it.

AMD is explicit Euler whose step is accepted only when the loss drops enough. The lab shows what
that buys: the step size it settles on (timeline of attempts), what each evaluation of the decoder
achieves (loss against t and against NFE), which samples are expensive (NFE histogram), where a
fixed Euler step stops being stable (stiffness: 2 / largest Hessian eigenvalue), and how many
evaluations euler, rk4 and dopri5 need for the loss AMD reaches. The solves and the stiffness
numbers come from :mod:`gfe_viz.analysis.solver_runs` and :mod:`gfe_viz.analysis.stiffness`.
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from torch import nn

from .._checks import check_positive, check_tensor
from ..amd import ACCEPTANCE_MODES, AMD_MNIST, AMDOptions
from ..analysis.solver_runs import SolverRun, amd_summary, run_solver, target_loss
from ..analysis.stiffness import EulerScan
from ..style import SOLVER_COLORS
from .interactive import InteractiveView, interactive_view, prerender_all
from .plotting import compact, fixed_layout


# --- the AMD lab -----------------------------------------------------------------------------------
def amd_lab_figure(run: SolverRun) -> go.Figure:
    """Four panels of one AMD solve: attempts (t, dt) accepted/rejected, loss vs t, loss vs NFE, NFE histogram.

    Traces: "accepted", "rejected" (timeline), one "sample i" line per sample in each loss panel,
    "batch mean" (loss vs NFE) and "NFE per sample" (histogram).
    """
    steps = run.result.steps
    if steps is None or run.result.solver != "amd":
        raise ValueError(f"amd_lab_figure needs a recorded AMD run, got solver {run.result.solver!r}")
    # Traces as plain dicts on the panels' axes (x, x2, x3, x4 row by row), in a layout made once:
    # plotly then checks each once, a fraction of the time of go objects added panel by panel.
    timeline, against_t, against_nfe, histogram = (dict(xaxis=f"x{k}", yaxis=f"y{k}") for k in ("", 2, 3, 4))
    traces = []
    attempt, sample = torch.nonzero(steps.active, as_tuple=True)
    for name, mask, marker in (
        ("accepted", steps.accepted, dict(color="#2ca02c", size=5, symbol="circle")),
        ("rejected", ~steps.accepted, dict(color="#d62728", size=7, symbol="x")),
    ):
        keep = mask[attempt, sample]
        a, s = attempt[keep], sample[keep]
        traces.append(
            dict(
                type="scatter",
                x=compact(steps.t[a, s]),
                y=compact(steps.dt[a, s]),
                mode="markers",
                name=name,
                marker=marker,
                customdata=np.stack([s.numpy(), a.numpy()], 1),
                hovertemplate="sample %{customdata[0]}, attempt %{customdata[1]}"
                "<br>t=%{x:.4g}, dt=%{y:.4g}<extra></extra>",
                **timeline,
            )
        )
    moved = run.result.trajectory.accepted.numpy()
    for i in range(run.loss.shape[1]):
        rows = np.flatnonzero(moved[:, i])
        rows = np.append(rows, run.loss.shape[0] - 1)  # the end: rejected attempts after the last move cost too
        style = dict(
            type="scatter",
            mode="lines",
            line=dict(width=1, shape="hv"),
            opacity=0.6,
            legendgroup="samples",
            name=f"sample {i}",
            showlegend=False,
        )
        traces.append(dict(x=compact(run.t[rows, i]), y=compact(run.loss[rows, i]), **style, **against_t))
        traces.append(dict(x=compact(run.nfe[rows, i]), y=compact(run.loss[rows, i]), **style, **against_nfe))
    nfe_mean, loss_mean = run.mean_curve()
    traces.append(
        dict(
            type="scatter",
            x=compact(nfe_mean),
            y=compact(loss_mean),
            mode="lines",
            name="batch mean",
            line=dict(color="black", width=3),
            **against_nfe,
        )
    )
    traces.append(
        dict(
            type="histogram",
            x=run.result.stats.nfe.numpy(),
            name="NFE per sample",
            marker_color=SOLVER_COLORS["amd"],
            **histogram,
        )
    )
    return go.Figure(data=traces, layout=_amd_lab_layout())


@fixed_layout
def _amd_lab_layout() -> go.Figure:
    figure = make_subplots(
        rows=2,
        cols=2,
        vertical_spacing=0.14,
        horizontal_spacing=0.1,
        subplot_titles=(
            "every attempt: step size dt at time t",
            "loss of each sample against t",
            "loss against decoder evaluations (NFE)",
            "NFE per sample",
        ),
    )
    return figure.update_layout(
        xaxis=dict(title_text="t"),
        yaxis=dict(type="log", title_text="dt"),
        xaxis2=dict(title_text="t", type="log"),
        yaxis2=dict(title_text="loss", type="log"),
        xaxis3=dict(title_text="NFE"),
        yaxis3=dict(title_text="loss", type="log"),
        xaxis4=dict(title_text="NFE"),
        yaxis4=dict(title_text="samples"),
        width=980,
        height=760,
        legend=dict(orientation="h", x=0, y=-0.08, yanchor="top"),
    )


#: the lab's step-control values besides the options' own: few enough to render every one ahead
SHRINK_CHOICES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
GROW_CHOICES = (1.0, 1.05, 1.1, 1.2, 1.3, 1.5, 2.0, 2.5, 3.0)
SIGMA_CHOICES = (0.0, *(10.0**k for k in range(-8, 1)))


def amd_lab_view(
    decoder: nn.Module,
    x: torch.Tensor,
    tau: float = 1e4,
    amd: AMDOptions = AMD_MNIST,
    loss: str = "bce",
    precompute: bool = True,
) -> InteractiveView:
    """Notebook view: re-solve the batch ``x`` with AMD whenever a step-control slider moves.

    Controls: ``dt0`` (0.1-10) and ``dt_max`` (10-1000; the ranges keep dt_max >= dt0), each at
    four positions a decade, ``shrink`` (0.1-0.9), ``grow`` (1-3), ``sigma`` (0 or 1e-8 ... 1),
    each also at ``amd``'s value, and ``acceptance`` (per_sample or batch); the other AMD fields
    come from ``amd``. A solve of the batch takes most of a redraw, so with ``precompute`` the view
    renders every value of each control, the others at their defaults, when it is built (about 45
    solves): a change of one control from the defaults then shows at once.
    """
    x = check_tensor("x", x)
    check_positive("tau", tau)

    def render(dt0, dt_max, shrink, grow, sigma, acceptance):
        options = amd.replace(dt0=dt0, dt_max=dt_max, shrink=shrink, grow=grow, sigma=sigma)
        # the hand-written MLP gradient (equal to autograd to rounding) redraws about a third faster
        run = run_solver(decoder, x, "amd", tau=tau, loss=loss, amd=options, acceptance=acceptance, gradient="auto")
        return amd_lab_figure(run), amd_summary(run.result)

    def choices(values: tuple[float, ...], default: float) -> list[float]:
        return sorted({*values, default})

    log = dict(base=10, step=0.25)
    controls = {
        "dt0": widgets.FloatLogSlider(value=amd.dt0, min=-1, max=1, description="dt0", **log),
        "dt_max": widgets.FloatLogSlider(value=amd.dt_max, min=1, max=3, description="dt_max", **log),
        "shrink": widgets.SelectionSlider(
            options=choices(SHRINK_CHOICES, amd.shrink), value=amd.shrink, description="shrink"
        ),
        "grow": widgets.SelectionSlider(options=choices(GROW_CHOICES, amd.grow), value=amd.grow, description="grow"),
        "sigma": widgets.SelectionSlider(
            options=choices(SIGMA_CHOICES, amd.sigma), value=amd.sigma, description="sigma"
        ),
        "acceptance": widgets.ToggleButtons(options=ACCEPTANCE_MODES, value="per_sample", description="acceptance"),
    }
    view = interactive_view(render, controls)
    if precompute:
        prerender_all(view, tuple(controls))
    return view


# --- stiffness: where a fixed Euler step stops being stable ---------------------------------------------
def stiffness_figure(scan: EulerScan) -> go.Figure:
    """Batch-mean loss after the Euler run against dt, the unstable-sample count, and 2/lambda_max marked.

    Traces: "final loss", "best loss along the way", "unstable samples" (right axis) and the
    smallest predicted limit "2/λ_max = ..." as a vertical line.
    """
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    figure.add_trace(
        go.Scatter(
            x=scan.dts,
            y=_finite_mean(scan.final_loss),
            mode="lines+markers",
            name="final loss",
            line=dict(color=SOLVER_COLORS["euler"]),
        )
    )
    figure.add_trace(
        go.Scatter(
            x=scan.dts,
            y=_finite_mean(scan.best_loss),
            mode="lines+markers",
            name="best loss along the way",
            line=dict(color="grey", dash="dot"),
        )
    )
    figure.add_trace(
        go.Scatter(
            x=scan.dts,
            y=scan.unstable().sum(1),
            mode="lines+markers",
            name="unstable samples",
            line=dict(color="black", shape="hv", width=1),
        ),
        secondary_y=True,
    )
    limit = float(np.min(scan.limit))
    figure.add_trace(
        go.Scatter(
            x=[limit, limit],
            y=[0, 1],
            yaxis="y3",
            mode="lines",
            name=f"2/λ_max = {limit:.3g}",
            line=dict(color="black", dash="dash"),
        )
    )
    blow_up = scan.blow_up_dt()
    title = f"first unstable dt = {blow_up:.3g}" if blow_up is not None else "stable at every scanned dt"
    figure.update_layout(
        title=f"Euler on {scan.final_loss.shape[1]} samples: {title}",
        width=820,
        height=420,
        xaxis=dict(type="log", title="Euler step dt"),
        legend=dict(orientation="h", y=-0.2),
    )
    figure.update_yaxes(title_text="batch-mean loss", secondary_y=False)
    figure.update_yaxes(
        title_text="unstable samples",
        secondary_y=True,
        rangemode="tozero",
        tickformat="d",
        dtick=max(1, -(-scan.final_loss.shape[1] // 5)),
    )  # whole counts
    figure.update_layout(yaxis3=dict(overlaying="y", range=[0, 1], visible=False))
    return figure


def _finite_mean(values: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(values), values, np.nan).mean(1)


# --- AMD against the classical solvers ---------------------------------------------------------------
def comparison_figure(runs: list[SolverRun], target: float | None = None) -> go.Figure:
    """Excess batch-mean loss (over the lowest any run reached) against mean NFE per sample, target dashed.

    One trace per run, named after it with the NFE it needed to reach the target (default: AMD's
    final loss), then the target as a dashed line across the plot.
    """
    target = target_loss(runs, target)
    best = min(float(np.nanmin(run.mean_curve()[1])) for run in runs)
    floor = 1e-3 * max(target - best, 1e-6)
    figure = go.Figure()
    for run in runs:
        nfe, loss = run.mean_curve()
        needed = run.nfe_to_reach(target)
        label = f"{run.name}: {needed:.0f} NFE" if needed is not None else f"{run.name}: target not reached"
        figure.add_trace(
            go.Scatter(
                x=compact(nfe),
                y=compact(loss - best + floor),
                mode="lines",
                name=label,
                line=dict(width=2),
                customdata=compact(loss),
                hovertemplate="NFE %{x:.1f}<br>loss %{customdata:.5f}",
            )
        )
    figure.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[target - best + floor] * 2,
            xaxis="x2",
            mode="lines",
            name=f"target: batch-mean loss {target:.5f}",
            line=dict(color="black", dash="dash"),
        )
    )
    figure.update_layout(xaxis2=dict(overlaying="x", range=[0, 1], visible=False))
    figure.update_layout(
        title="Decoder evaluations needed for the same loss",
        width=860,
        height=440,
        xaxis=dict(type="log", title="mean NFE per sample"),
        yaxis=dict(type="log", title=f"batch-mean loss − {best:.5f} (lowest reached)"),
    )
    return figure
