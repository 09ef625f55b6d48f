"""Plotly figures for the truncation lesson; each builder takes an experiment's result and returns a go.Figure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..style import CLUSTER_COLORS, THRESHOLD_COLORS
from ..viz.plotting import frame_slider, play_button
from .experiments import (
    AlignedRun,
    ReLUNetRuns,
    ThresholdODERun,
    loss_rate_segments,
    threshold_distance,
    truncated_mean_target,
)
from .threshold_ode import RateSegments

LAYER_DASHES = ("solid", "dash", "dot", "dashdot")
#: float64 round-off of an exact zero of NC1 or of a spread is about 1e-31; log plots draw smaller values here
ROUND_OFF_FLOOR = 1e-30


def threshold_ode_figure(run: ThresholdODERun, time: float) -> go.Figure:
    """E1 in three panels: |beta - y~| against t (log scale, events marked), measured rate against n/N,
    and the data strip at ``time`` with the truncated points coloured."""
    figure = make_subplots(
        rows=1,
        cols=3,
        column_widths=[0.42, 0.26, 0.32],
        horizontal_spacing=0.08,
        subplot_titles=("distance to the target", "measured rate against n/N", f"the data at t = {time:.2f}"),
    )
    exact_times = np.linspace(0.0, run.euler.times[-1], 400)
    figure.add_trace(
        go.Scatter(
            x=exact_times,
            y=np.abs(run.exact.beta(exact_times) - run.target),
            name="exact solution",
            line=dict(color="black"),
        ),
        row=1,
        col=1,
    )
    figure.add_trace(
        go.Scatter(
            x=run.euler.times,
            y=np.abs(run.euler.beta - run.target),
            name="Euler",
            line=dict(color="orange", dash="dash"),
        ),
        row=1,
        col=1,
    )
    events = run.exact.event_times[run.exact.event_times <= run.euler.times[-1]]
    figure.add_trace(
        go.Scatter(
            x=events,
            y=np.abs(run.exact.beta(events) - run.target),
            mode="markers",
            name="events",
            marker=dict(color="black", size=5, symbol="x"),
        ),
        row=1,
        col=1,
    )
    figure.add_vline(x=time, line=dict(color="grey", dash="dot"), row=1, col=1)
    figure.update_yaxes(type="log", title_text="|beta - y~|", row=1, col=1)
    figure.update_xaxes(title_text="t", row=1, col=1)
    for trace in rate_traces({"Euler": run.rates}, len(run.points)):
        figure.add_trace(trace, row=1, col=2)
    figure.update_xaxes(title_text="n / N", row=1, col=2)
    figure.update_yaxes(title_text="rate", row=1, col=2)
    beta = float(run.exact.beta(time))
    truncated = run.points < beta
    for mask, name, colour in ((truncated, "truncated", "crimson"), (~truncated, "untruncated", "steelblue")):
        figure.add_trace(
            go.Scatter(
                x=run.points[mask],
                y=np.zeros(mask.sum()),
                mode="markers",
                name=name,
                marker=dict(color=colour, size=8, opacity=0.7),
            ),
            row=1,
            col=3,
        )
    figure.add_trace(
        go.Scatter(x=[beta, beta], y=[-1, 1], mode="lines", name="threshold beta(t)", line=dict(color="black")),
        row=1,
        col=3,
    )
    figure.add_trace(
        go.Scatter(
            x=[run.target],
            y=[0],
            mode="markers",
            name="target y~",
            marker=dict(color="gold", size=14, symbol="star", line=dict(color="black", width=1)),
        ),
        row=1,
        col=3,
    )
    figure.update_yaxes(visible=False, range=[-1.5, 1.5], row=1, col=3)
    figure.update_xaxes(title_text="x", row=1, col=3)
    figure.update_layout(height=380, margin=dict(t=40, b=40), legend=dict(orientation="h", y=-0.2))
    return figure


def rate_traces(segments: Mapping[str, RateSegments], n_points: int) -> list[go.Scatter]:
    """Measured rates (one marker per constant-count stretch) against n/N, and the line rate = n/N."""
    traces = [
        go.Scatter(
            x=segment.counts / n_points,
            y=segment.rates,
            mode="markers",
            name=f"measured: {name}",
            marker=dict(size=7, opacity=0.75),
        )
        for name, segment in segments.items()
    ]
    top = max([1.0 / n_points] + [float(s.counts.max(initial=0)) / n_points for s in segments.values()])
    traces.append(
        go.Scatter(x=[0, top], y=[0, top], mode="lines", name="rate = n/N", line=dict(color="grey", dash="dash"))
    )
    return traces


def rate_figure(segments: Mapping[str, RateSegments], n_points: int, title: str) -> go.Figure:
    """Normalised rates of several thresholds against n/N: on the identity line if the effective ODE holds."""
    figure = go.Figure(rate_traces(segments, n_points))
    figure.update_layout(
        title=title,
        xaxis_title="n / N",
        yaxis_title="measured rate / predicted factor",
        height=520,
        legend=dict(orientation="h", y=-0.2),
    )
    return figure


def input_space_animation(run: AlignedRun, title: str = "input-space representation x~(L)") -> go.Figure:
    """The clusters as the network sees them in input space, one frame per snapshot, with the thresholds
    beta^(l) (lines, one dash per layer) and the pulled-back targets y~_j (stars)."""
    low = min(run.x.min(), run.targets.min()) - 0.2
    high = max(run.x.max(), run.targets.max()) + 0.2
    clusters = np.unique(run.labels)
    snapshot_index = np.searchsorted(run.times, run.snapshot_times)

    def frame_traces(k: int) -> list[go.Scatter]:
        traces = [
            go.Scatter(
                x=run.snapshots[k][run.labels == j, 0],
                y=run.snapshots[k][run.labels == j, 1],
                mode="markers",
                name=f"cluster {j}",
                marker=dict(color=CLUSTER_COLORS[j % len(CLUSTER_COLORS)], size=6, opacity=0.7),
            )
            for j in clusters
        ]
        step = snapshot_index[k]
        for layer, (beta_x, beta_y) in enumerate(run.thresholds[step]):
            traces.append(
                go.Scatter(
                    x=[beta_x, beta_x, None, low, high],
                    y=[low, high, None, beta_y, beta_y],
                    mode="lines",
                    name=f"thresholds, layer {layer + 1}",
                    line=dict(color="black", width=1, dash=LAYER_DASHES[layer % len(LAYER_DASHES)]),
                )
            )
        traces.append(
            go.Scatter(
                x=run.targets[step, :, 0],
                y=run.targets[step, :, 1],
                mode="markers",
                name="targets y~",
                marker=dict(color="gold", size=14, symbol="star", line=dict(color="black", width=1)),
            )
        )
        return traces

    frames = [go.Frame(data=frame_traces(k), name=f"{t:.2f}") for k, t in enumerate(run.snapshot_times)]
    figure = go.Figure(data=frame_traces(0), frames=frames)
    figure.update_layout(
        title=title,
        height=640,
        width=640,
        xaxis=dict(range=[low, high], title="x1"),
        yaxis=dict(range=[low, high], title="x2", scaleanchor="x"),
        margin=dict(b=120),
        updatemenus=[play_button(frame_ms=250, y=-0.16)],
        sliders=[frame_slider([f.name for f in frames], [f.name for f in frames], prefix="t = ", y=-0.12)],
    )
    return figure


def truncation_history_figure(run: AlignedRun) -> go.Figure:
    """Top: truncation counts n_(l,q,j)(t), staircases. Bottom: |beta_(l,q) - y~_(j,q)| on a log scale with
    the events (count changes) marked; j is the cluster each threshold truncates."""
    figure = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=("truncation counts n(l, q, j)", "distance of each threshold to its target"),
    )
    n_layers, n_coordinates, n_clusters = run.counts.shape[1:]
    for layer in range(n_layers):
        for q in range(n_coordinates):
            colour = THRESHOLD_COLORS[(layer * n_coordinates + q) % len(THRESHOLD_COLORS)]
            for j in range(n_clusters):
                counts = run.counts[:, layer, q, j]
                if counts.any():
                    figure.add_trace(
                        go.Scatter(
                            x=run.times,
                            y=counts,
                            mode="lines",
                            line_shape="hv",
                            line=dict(color=colour, dash=LAYER_DASHES[j % len(LAYER_DASHES)]),
                            name=f"n(layer {layer + 1}, x{q + 1}, cluster {j})",
                        ),
                        row=1,
                        col=1,
                    )
            distance, total_counts = threshold_distance(run, layer, q)
            events = np.flatnonzero(np.diff(total_counts)) + 1
            figure.add_trace(
                go.Scatter(
                    x=run.times,
                    y=distance,
                    mode="lines",
                    line=dict(color=colour),
                    name=f"|beta - y~|, layer {layer + 1}, x{q + 1}",
                ),
                row=2,
                col=1,
            )
            figure.add_trace(
                go.Scatter(
                    x=run.times[events],
                    y=distance[events],
                    mode="markers",
                    showlegend=False,
                    marker=dict(size=4, color=colour),
                    name="events",
                ),
                row=2,
                col=1,
            )
    figure.update_yaxes(title_text="points truncated", row=1, col=1)
    figure.update_yaxes(type="log", title_text="|beta - y~|", row=2, col=1)
    figure.update_xaxes(title_text="t", row=2, col=1)
    figure.update_layout(height=640)
    return figure


def collapse_figure(runs: Mapping[str, AlignedRun]) -> go.Figure:
    """NC1 of the input-space representation against t, log scale, one line per run; values below
    ``ROUND_OFF_FLOOR`` (an exact zero up to round-off) are drawn at the floor."""
    figure = go.Figure(
        [
            go.Scatter(x=run.times, y=np.maximum(run.nc1, ROUND_OFF_FLOOR), mode="lines", name=name)
            for name, run in runs.items()
        ]
    )
    figure.update_layout(
        title=f"within-class variability NC1 (log scale; values below {ROUND_OFF_FLOOR:.0e}, "
        "round-off of zero, drawn at it)",
        xaxis_title="t",
        yaxis_title="NC1",
        yaxis_type="log",
        height=420,
    )
    return figure


def unseparated_figure(runs: Mapping[str, AlignedRun], coordinate: int = 1) -> go.Figure:
    """E3: per run, the thresholds beta_(l,q)(t) in one coordinate that truncate anything and the mean target
    y-bar(t) of the points each one truncates (top); the cost and the within-class variance (bottom, log
    scale, round-off of zero drawn at ``ROUND_OFF_FLOOR``)."""
    names = list(runs)
    figure = make_subplots(
        rows=2,
        cols=len(names),
        shared_xaxes=True,
        vertical_spacing=0.1,
        subplot_titles=[f"{name}: x{coordinate + 1} thresholds" for name in names]
        + [f"{name}: cost and spread" for name in names],
    )
    for col, name in enumerate(names, start=1):
        run = runs[name]
        for layer in range(run.thresholds.shape[1]):
            mean_target = truncated_mean_target(run, layer, coordinate)
            if np.isnan(mean_target).all():
                continue  # this threshold never truncates a point, so it never moves
            dash = LAYER_DASHES[layer % len(LAYER_DASHES)]
            figure.add_trace(
                go.Scatter(
                    x=run.times,
                    y=run.thresholds[:, layer, coordinate],
                    mode="lines",
                    name=f"{name}: beta, layer {layer + 1}",
                    line=dict(color="black", dash=dash),
                ),
                row=1,
                col=col,
            )
            figure.add_trace(
                go.Scatter(
                    x=run.times,
                    y=mean_target,
                    mode="lines",
                    name=f"{name}: y-bar, layer {layer + 1}",
                    line=dict(color="orange", dash=dash),
                ),
                row=1,
                col=col,
            )
        figure.add_trace(
            go.Scatter(x=run.times, y=run.loss, mode="lines", name=f"{name}: cost", line=dict(color="black")),
            row=2,
            col=col,
        )
        for j in range(run.class_variance.shape[1]):
            spread = np.maximum(run.class_variance[:, j], ROUND_OFF_FLOOR)
            figure.add_trace(
                go.Scatter(
                    x=run.times,
                    y=spread,
                    mode="lines",
                    name=f"{name}: spread of cluster {j}",
                    line=dict(color=CLUSTER_COLORS[j % len(CLUSTER_COLORS)]),
                ),
                row=2,
                col=col,
            )
        figure.update_yaxes(type="log", row=2, col=col)
        figure.update_xaxes(title_text="t", row=2, col=col)
    figure.update_layout(height=620)
    return figure


def outcome_figure(fractions: Mapping[str, Mapping[str, float]]) -> go.Figure:
    """E4: the fraction of runs with each outcome, one group of bars per setting (e.g. per depth)."""
    settings = list(fractions)
    outcomes = list(next(iter(fractions.values())))
    figure = go.Figure(
        [go.Bar(x=settings, y=[fractions[s][outcome] for s in settings], name=outcome) for outcome in outcomes]
    )
    figure.update_layout(
        barmode="group",
        title="outcomes of ordinary narrow ReLU networks",
        yaxis=dict(title="fraction of seeds", range=[0, 1]),
        height=420,
    )
    return figure


def loss_rate_figure(runs: ReLUNetRuns, outcomes: Sequence[str], title: str) -> go.Figure:
    """E4: for each truncation-driven run, the cost decay rate of each constant-count stretch against the
    total number of truncations, joined in time order (log scale in the rate)."""
    figure = go.Figure()
    for index, outcome in enumerate(outcomes):
        if outcome == "truncation-driven collapse":
            segments = loss_rate_segments(runs, index)
            positive = segments.rates > 0
            figure.add_trace(
                go.Scatter(
                    x=segments.counts[positive],
                    y=segments.rates[positive],
                    mode="lines+markers",
                    name=f"seed {runs.seeds[index]}",
                    marker=dict(size=5),
                )
            )
    figure.update_layout(
        title=title,
        xaxis_title="truncations (summed over layers, neurons, clusters)",
        yaxis_title="cost decay rate",
        yaxis_type="log",
        height=420,
    )
    return figure
