"""The decoder-training lesson: how far the approximate adjoint gradient is from the full one.

Both views read a :class:`~gfe_viz.gradient_compare.GradientComparison` (one batch solved for
several horizons tau). The training curves of the two adjoints are drawn with
:func:`gfe_viz.viz.efficiency.loss_curves_figure`.
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..gradient_compare import GradientComparison
from .interactive import InteractiveView, interactive_view
from .plotting import compact

SERIES = {"cosine": ("cosine similarity", "#1f77b4"), "norm_ratio": ("norm ratio ‖approx‖ / ‖full‖", "#d62728")}


def gradient_agreement_figure(comparison: GradientComparison) -> go.Figure:
    """Cosine similarity and norm ratio of the two gradients against tau (left) and against the
    mean ||grad_z l|| at z* (right, reversed: convergence to the right). Two traces per panel."""
    _check(comparison)
    figure = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.1,
        subplot_titles=("against the solve's horizon tau", "against how far z* is from stationary"),
    )
    for col, x in ((1, comparison.tau), (2, comparison.grad_norm)):
        for trace in _agreement_traces(comparison, x, showlegend=col == 1):
            figure.add_trace(trace, 1, col)
        figure.add_hline(y=1.0, line=dict(color="gray", dash="dot", width=1), row=1, col=col)
    figure.update_xaxes(type="log", title_text="tau", row=1, col=1)
    figure.update_xaxes(type="log", autorange="reversed", title_text="mean ‖∇z l(x, D(z*))‖", row=1, col=2)
    figure.update_yaxes(title_text="approximate vs full adjoint", row=1, col=1)
    figure.update_layout(
        height=420,
        width=980,
        legend=dict(orientation="h", y=-0.2),
        title=dict(text="Decoder gradients of one batch: approximate against full adjoint", font=dict(size=13)),
    )
    return figure


def gradient_scatter_view(comparison: GradientComparison) -> InteractiveView:
    """Notebook view: at the horizon chosen with the ``tau`` slider, the kept gradient entries of
    the full (x) against the approximate (y) adjoint, beside the agreement curves with tau marked.

    Figure traces: 0 entries, 1 the diagonal y = x, 2-3 agreement curves, 4-5 current points.
    """
    _check(comparison)
    taus = comparison.tau.tolist()

    def render(tau):
        k = taus.index(tau)
        full, approx = comparison.full_entries[k], comparison.approx_entries[k]
        figure = make_subplots(
            rows=1,
            cols=2,
            horizontal_spacing=0.12,
            subplot_titles=(f"{full.size} gradient entries at tau = {tau:g}", "agreement against tau"),
        )
        figure.add_trace(
            go.Scatter(
                x=compact(full),
                y=compact(approx),
                mode="markers",
                name="entries",
                marker=dict(size=3, color="#1f77b4", opacity=0.5),
                showlegend=False,
            ),
            1,
            1,
        )
        bound = float(np.abs(np.concatenate([full, approx])).max()) or 1.0
        figure.add_trace(
            go.Scatter(
                x=[-bound, bound], y=[-bound, bound], mode="lines", name="y = x", line=dict(color="gray", dash="dot")
            ),
            1,
            1,
        )
        for trace in _agreement_traces(comparison, comparison.tau, showlegend=True):
            figure.add_trace(trace, 1, 2)
        for key, (label, color) in SERIES.items():
            figure.add_trace(
                go.Scatter(
                    x=[tau],
                    y=[float(getattr(comparison, key)[k])],
                    mode="markers",
                    name=f"{label} at tau",
                    showlegend=False,
                    marker=dict(size=14, symbol="circle-open", line=dict(width=3), color=color),
                ),
                1,
                2,
            )
        figure.update_xaxes(title_text="full adjoint", row=1, col=1)
        figure.update_yaxes(title_text="approximate adjoint", scaleanchor="x", row=1, col=1)
        figure.update_xaxes(type="log", title_text="tau", row=1, col=2)
        figure.update_layout(height=440, width=980, legend=dict(orientation="h", y=-0.2))
        summary = {
            "tau": float(tau),
            **{key: float(getattr(comparison, key)[k]) for key in ("cosine", "norm_ratio", "grad_norm", "loss", "nfe")},
        }
        return figure, summary

    controls = {
        "tau": widgets.SelectionSlider(options=[(f"{t:g}", t) for t in taus], value=taus[-1], description="tau")
    }
    return interactive_view(render, controls)


def _agreement_traces(comparison: GradientComparison, x: np.ndarray, showlegend: bool) -> list[go.Scatter]:
    hover = [
        f"tau={t:g}, NFE={n:.1f}, loss={loss:.4f}"
        for t, n, loss in zip(comparison.tau, comparison.nfe, comparison.loss)
    ]
    return [
        go.Scatter(
            x=compact(x),
            y=compact(getattr(comparison, key)),
            mode="lines+markers",
            name=label,
            legendgroup=key,
            showlegend=showlegend,
            line=dict(color=color),
            text=hover,
            hovertemplate="%{y}<br>%{text}<extra></extra>",
        )
        for key, (label, color) in SERIES.items()
    ]


def _check(comparison) -> None:
    if not isinstance(comparison, GradientComparison):
        raise TypeError(f"comparison must be a GradientComparison, got {type(comparison).__name__}")
