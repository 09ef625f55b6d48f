"""The data-efficiency lesson's figures: AE and GFE validation curves, and their reconstructions as
training goes on. Where the curves and reconstructions come from (committed result files or a live
run) is decided by :mod:`gfe_viz.analysis.results`; the figure's title repeats it.
"""

from __future__ import annotations

import textwrap

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..analysis.results import Reconstructions
from ..experiments.plots import curve_label
from ..experiments.summary import seed_curve
from ..style import METHOD_COLORS, METHOD_LABELS
from .interactive import InteractiveView, interactive_view
from .plotting import compact, image_mosaic

TITLE_WIDTH = 130  #: characters per title line


def loss_curves_figure(rows: list[dict], title: str | None = None) -> go.Figure:
    """Validation loss against images seen (left) and training wall time (right), one row per dataset.

    Lines are seed means, shaded bands the seed range (when there are several seeds); both x axes
    are logarithmic. Traces per (dataset, method): band (if any), then mean line, left then right.
    """
    if not rows:
        raise ValueError("rows must hold at least one result row, got none")
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    titles = [f"{d}: {what}" for d in datasets for what in ("against images seen", "against training time")]
    figure = make_subplots(
        rows=len(datasets), cols=2, subplot_titles=titles, horizontal_spacing=0.08, vertical_spacing=0.3 / len(datasets)
    )
    for i, dataset in enumerate(datasets, start=1):
        for method in dict.fromkeys(r["method"] for r in rows if r["dataset"] == dataset):
            curve = seed_curve(rows, dataset, method)
            label = curve_label(method, len(curve.seeds))
            color = METHOD_COLORS.get(method)
            for col, x in ((1, curve.images_seen), (2, curve.wall_time)):
                if len(curve.seeds) > 1:
                    figure.add_trace(
                        go.Scatter(
                            x=compact(np.concatenate([x, x[::-1]])),
                            y=compact(np.concatenate([curve.high, curve.low[::-1]])),
                            mode="lines",
                            fill="toself",
                            opacity=0.2,
                            line=dict(width=0),
                            fillcolor=color,
                            name=f"{label}: seed range",
                            legendgroup=method,
                            showlegend=False,
                            hoverinfo="skip",
                        ),
                        i,
                        col,
                    )
                figure.add_trace(
                    go.Scatter(
                        x=compact(x),
                        y=compact(curve.mean),
                        mode="lines+markers",
                        name=label,
                        legendgroup=method,
                        showlegend=i == 1 and col == 1,
                        line=dict(color=color),
                        marker=dict(size=5),
                    ),
                    i,
                    col,
                )
        figure.update_xaxes(type="log", title_text="training images seen", row=i, col=1)
        figure.update_xaxes(type="log", title_text="training wall time (s, evaluation excluded)", row=i, col=2)
        figure.update_yaxes(title_text="validation loss (BCE per pixel)", row=i, col=1)
    lines = textwrap.wrap(title or "", TITLE_WIDTH)
    top = 70 + 16 * len(lines)  # room for the title lines above the subplot titles
    figure.update_layout(
        title=dict(text="<br>".join(lines), font=dict(size=12), yref="container", y=1, yanchor="top", pad=dict(t=12)),
        width=980,
        height=330 * len(datasets) + top,
        margin=dict(t=top),
    )
    return figure


def reconstruction_view(reconstructions: Reconstructions) -> InteractiveView:
    """Notebook view: the validation images and each method's reconstruction after ``images_seen``.

    The slider steps through every checkpoint of every method; a method shows its last checkpoint
    at or before the slider (its images seen are in the row label). Right: the validation curves
    with the shown checkpoints marked. The summary gives each method's images seen and validation
    loss at the shown checkpoint (the curve's value, over all validation images).
    """
    r = reconstructions
    options = sorted({n for seen in r.images_seen.values() for n in seen})

    def render(images_seen):
        shown = {m: r.at(m, images_seen) for m in r.images_seen}
        summary: dict = {"images_seen": images_seen}
        for m, i in shown.items():
            summary[f"{m}_images_seen"] = r.images_seen[m][i]
            summary[f"{m}_val_loss"] = r.val_loss[m][i]
        return _reconstruction_figure(r, shown, images_seen), summary

    style = {"description_width": "initial"}
    controls = {
        "images_seen": widgets.SelectionSlider(
            options=options,
            value=options[-1],
            description="images seen",
            style=style,
            layout=widgets.Layout(width="600px"),
        )
    }
    return interactive_view(render, controls)


def _reconstruction_figure(r: Reconstructions, shown: dict[str, int], images_seen: int) -> go.Figure:
    rows = {"original": r.images}
    for method, i in shown.items():
        rows[f"{METHOD_LABELS.get(method, method)}<br>{r.images_seen[method][i]:,} img"] = r.reconstructions[method][i]
    n = len(rows)
    specs = [[{}, {"rowspan": n}]] + [[{}, None] for _ in range(n - 1)]
    figure = make_subplots(
        rows=n,
        cols=2,
        column_widths=[0.62, 0.38],
        specs=specs,
        horizontal_spacing=0.1,
        vertical_spacing=0.04,
        subplot_titles=["", "validation loss"],
    )
    for i, (name, images) in enumerate(rows.items(), start=1):
        figure.add_trace(image_mosaic(images, name=name.split("<br>")[0]), i, 1)
        anchor = figure.get_subplot(i, 1).xaxis.plotly_name.replace("axis", "")
        figure.update_xaxes(visible=False, row=i, col=1)
        figure.update_yaxes(
            title_text=name,
            showticklabels=False,
            showgrid=False,
            zeroline=False,
            autorange="reversed",
            scaleanchor=anchor,
            constrain="domain",
            row=i,
            col=1,
        )
    for method, i in shown.items():
        style, label = dict(color=METHOD_COLORS.get(method)), METHOD_LABELS.get(method, method)
        figure.add_trace(
            go.Scatter(
                x=r.images_seen[method],
                y=compact(r.val_loss[method]),
                mode="lines+markers",
                name=label,
                legendgroup=method,
                line=style,
            ),
            1,
            2,
        )
        figure.add_trace(
            go.Scatter(
                x=[r.images_seen[method][i]],
                y=[r.val_loss[method][i]],
                mode="markers",
                name=f"{label} now",
                legendgroup=method,
                showlegend=False,
                marker=dict(size=14, symbol="circle-open", line=dict(width=3), **style),
            ),
            1,
            2,
        )
    figure.update_xaxes(type="log", title_text="training images seen", row=1, col=2)
    figure.update_layout(
        title=dict(
            text=f"{r.dataset}: the same validation images after {images_seen:,} training images ({r.description})",
            font=dict(size=13),
        ),
        height=130 * n + 140,
        width=980,
        legend=dict(orientation="h", y=-0.12),
    )
    return figure
