"""The latent-space lesson's figures and views: 2-D codes of GFE and the AE, interpolation between
two images, and how the GFE code of one image depends on where its gradient flow starts (the
numbers come from :mod:`gfe_viz.analysis.latent_metrics`).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from torch import nn

from .._checks import check_positive, check_tensor
from ..analysis.landscapes import latent_limits, loss_landscape, sample_path
from ..analysis.latent_metrics import compare_endpoints, interpolate, restart_encodings
from ..demo_models import DEMO_ENCODING
from ..solution import EncodeResult
from ..style import CLASS_COLORS
from ..training import EncodeSettings
from .interactive import InteractiveView, interactive_view
from .landscape import landscape_heatmap
from .plotting import compact, fixed_layout, image_mosaic

#: The demo encoder with the hand-written MLP gradient: equal to autograd to rounding, a redraw faster.
RESTARTS_ENCODING = dataclasses.replace(DEMO_ENCODING, gradient="auto")


def latent_scatter_figure(
    codes: dict[str, torch.Tensor], labels: torch.Tensor, class_names: list[str] | None = None
) -> go.Figure:
    """One panel per model (``codes``: name -> (N, 2)) with the codes coloured by class.

    Traces: for each panel, one per class present in ``labels`` (legend shown once).
    """
    labels = np.asarray(labels)
    if not codes:
        raise ValueError("codes must map at least one model name to (N, 2) codes, got none")
    for name, z in codes.items():
        if tuple(z.shape) != (labels.shape[0], 2):
            raise ValueError(
                f"codes[{name!r}] must have shape ({labels.shape[0]}, 2) like labels, got {tuple(z.shape)}"
            )
    classes = sorted(set(labels.tolist()))
    figure = make_subplots(
        rows=1, cols=len(codes), subplot_titles=[f"{name} codes" for name in codes], horizontal_spacing=0.08
    )
    for col, z in enumerate(codes.values(), start=1):
        z = np.asarray(z, dtype=float)
        for c in classes:
            keep = labels == c
            label = class_names[c] if class_names is not None else str(c)
            figure.add_trace(
                go.Scatter(
                    x=compact(z[keep, 0]),
                    y=compact(z[keep, 1]),
                    mode="markers",
                    name=label,
                    legendgroup=label,
                    showlegend=col == 1,
                    marker=dict(size=5, color=CLASS_COLORS[c % len(CLASS_COLORS)]),
                ),
                1,
                col,
            )
        figure.update_xaxes(title_text="z₁", row=1, col=col)
        figure.update_yaxes(title_text="z₂", row=1, col=col)
    figure.update_layout(
        height=460,
        width=440 * len(codes) + 100,
        legend=dict(title="class"),
        title=dict(text="Two-dimensional latent codes, coloured by class", font=dict(size=13)),
    )
    return figure


def interpolation_view(
    models: dict[str, nn.Module],
    images: torch.Tensor,
    codes: dict[str, torch.Tensor],
    image_a: int = 0,
    image_b: int = 1,
) -> InteractiveView:
    """Notebook view: decode z(s) = (1 - s) z_a + s z_b for two of ``images``, in every model.

    Controls: ``image_a``, ``image_b`` (indices into ``images``) and ``s`` in [0, 1]. One row per
    model: its codes (grey) with the segment and z(s), and the images x_a, D(z(s)), x_b. The
    summary gives each model's loss of D(z(s)) against x_a and x_b.
    """
    images = check_tensor("images", images, min_dim=2)
    if not models or set(models) != set(codes):
        raise ValueError(f"models and codes must name the same models, got {sorted(models)} and {sorted(codes)}")
    n = images.shape[0]
    for name, index in (("image_a", image_a), ("image_b", image_b)):
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n:
            raise ValueError(f"{name} must be an index in [0, {n}), got {index!r}")

    def render(image_a, image_b, s):
        figure = make_subplots(
            rows=len(models),
            cols=2,
            column_widths=[0.45, 0.55],
            horizontal_spacing=0.08,
            vertical_spacing=0.12,
            subplot_titles=[
                t for name in models for t in (f"{name}: codes and the segment z_a → z_b", f"{name}: x_a, D(z(s)), x_b")
            ],
        )
        summary: dict = {"s": float(s)}
        for row, (name, model) in enumerate(models.items(), start=1):
            z = codes[name]
            point = interpolate(model, z[image_a], z[image_b], s, images[image_a], images[image_b])
            z_s, ends = point.z, images[[image_a, image_b]]
            summary[f"{name}_loss_a"], summary[f"{name}_loss_b"] = point.loss_a, point.loss_b
            zn = z.numpy()
            figure.add_trace(
                go.Scatter(
                    x=compact(zn[:, 0]),
                    y=compact(zn[:, 1]),
                    mode="markers",
                    name="codes",
                    showlegend=False,
                    marker=dict(size=3, color="lightgray"),
                ),
                row,
                1,
            )
            segment = zn[[image_a, image_b]]
            figure.add_trace(
                go.Scatter(
                    x=segment[:, 0].tolist(),
                    y=segment[:, 1].tolist(),
                    mode="lines+markers+text",
                    text=["a", "b"],
                    textposition="top center",
                    name="z_a → z_b",
                    showlegend=False,
                    line=dict(color="black"),
                ),
                row,
                1,
            )
            figure.add_trace(
                go.Scatter(
                    x=[float(z_s[0])],
                    y=[float(z_s[1])],
                    mode="markers",
                    name="z(s)",
                    showlegend=False,
                    marker=dict(size=14, color="red", symbol="x"),
                ),
                row,
                1,
            )
            figure.add_trace(image_mosaic(torch.stack([ends[0], point.decoded[0], ends[1]]), name=name), row, 2)
            figure.update_xaxes(visible=False, row=row, col=2)
            figure.update_yaxes(
                visible=False,
                autorange="reversed",
                constrain="domain",
                scaleanchor=figure.get_subplot(row, 2).xaxis.plotly_name.replace("axis", ""),
                row=row,
                col=2,
            )
        figure.update_layout(
            height=330 * len(models) + 60,
            width=980,
            title=dict(text=f"Interpolation at s = {s:.2f}", font=dict(size=13)),
        )
        return figure, summary

    controls = {
        "image_a": widgets.IntSlider(value=image_a, min=0, max=n - 1, description="image a"),
        "image_b": widgets.IntSlider(value=image_b, min=0, max=n - 1, description="image b"),
        "s": widgets.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="s"),
    }
    return interactive_view(render, controls)


def restarts_view(
    decoder: nn.Module,
    images: torch.Tensor,
    n_restarts: int = 16,
    radius: float = 2.0,
    resolution: int = 41,
    tol: float = 0.1,
    encoding: EncodeSettings = RESTARTS_ENCODING,
) -> InteractiveView:
    """Notebook view: one image encoded from many random z0 on its loss landscape.

    Controls: ``image``, ``radius`` of the z0 box, ``n_restarts`` and ``seed``. Left: the landscape
    with every path (z0 ○ → z* ★); middle: each z*'s loss against its distance from the best z*;
    right: what the z* decode to, best first. Summary: the loss range, the largest distance
    from the best z*, the largest mean per-pixel change of D(z*) from the best one's, and the
    number of distinct endpoints (within ``tol``). Each image's landscape is computed once per box
    (:func:`landscape_box`), so that another seed or restart count mostly redraws it.
    """
    images = check_tensor("images", images, min_dim=2)
    check_positive("tol", tol)

    @functools.lru_cache(maxsize=64)
    def landscape(image: int, box: tuple[float, float, float, float]):
        return loss_landscape(decoder, images[image : image + 1], box, resolution)

    def render(image, radius, n_restarts, seed):
        x = images[image : image + 1]
        result = restart_encodings(decoder, x, n_restarts, radius, seed, encoding)
        points = torch.cat([result.trajectory.z[0], result.z]).numpy()
        ends = compare_endpoints(decoder, result, tol)
        shown = torch.cat([x, ends.decoded[:8].reshape(-1, *x.shape[1:])])
        figure = _restarts_figure(
            landscape(image, landscape_box(points, radius)),
            result,
            ends.distance,
            shown,
            title=f"Image {image} encoded from {n_restarts} random starts",
        )
        summary = {
            "loss_min": float(result.loss.min()),
            "loss_max": float(result.loss.max()),
            "max_distance": float(ends.distance.max()),
            "max_picture_change": float(ends.picture_change.max()),
            "distinct_endpoints": ends.distinct,
        }
        return figure, summary

    controls = {
        "image": widgets.IntSlider(value=0, min=0, max=images.shape[0] - 1, description="image"),
        "radius": widgets.FloatSlider(value=radius, min=0.25, max=8.0, step=0.25, description="z0 radius"),
        "n_restarts": widgets.IntSlider(value=n_restarts, min=2, max=64, description="restarts"),
        "seed": widgets.IntSlider(value=0, min=0, max=9, description="seed"),
    }
    return interactive_view(render, controls)


def landscape_box(points: np.ndarray, radius: float) -> tuple[float, float, float, float]:
    """The restarts view's landscape box: the z0 box [-radius, radius]² and the ``points`` (N, 2; the
    starts and ends) padded by a tenth of the side, widened to the next of four sizes per octave
    and a centre on a grid of an eighth of that size. Nearby boxes (another seed, more restarts)
    are then one box, and share one landscape."""
    corners = np.array([[-radius, -radius], [radius, radius]], dtype=float)
    low1, high1, low2, high2 = latent_limits(np.vstack([np.asarray(points, dtype=float), corners]), margin=0.1)
    size = 2.0 ** (math.ceil(4 * math.log2((high1 - low1) / 2)) / 4)  # >= the half side
    step = size / 8
    centre = [round((low + high) / 2 / step) * step for low, high in ((low1, high1), (low2, high2))]
    half = size + step / 2  # the centre moved by at most step / 2: the box still holds the padded one
    return (centre[0] - half, centre[0] + half, centre[1] - half, centre[1] + half)


def _restarts_figure(
    landscape, result: EncodeResult, distance: np.ndarray, shown: torch.Tensor, title: str
) -> go.Figure:
    starts, ends = result.trajectory.z[0].numpy(), result.z.numpy()
    left, middle, right = (dict(xaxis=f"x{k}", yaxis=f"y{k}") for k in ("", 2, 3))
    path = np.concatenate([np.vstack([sample_path(result, i)[1], [[np.nan, np.nan]]]) for i in range(len(ends))])
    traces = [
        landscape_heatmap(landscape).update(showscale=False, **left),
        dict(
            type="scatter",
            x=compact(path[:, 0]),
            y=compact(path[:, 1]),
            mode="lines",
            name="paths",
            line=dict(color="white", width=1),
            **left,
        ),
        dict(
            type="scatter",
            x=compact(starts[:, 0]),
            y=compact(starts[:, 1]),
            mode="markers",
            name="z0",
            marker=dict(size=8, symbol="circle-open", color="white"),
            **left,
        ),
        dict(
            type="scatter",
            x=compact(ends[:, 0]),
            y=compact(ends[:, 1]),
            mode="markers",
            name="z*",
            marker=dict(size=12, symbol="star", color="red"),
            **left,
        ),
        dict(
            type="scatter",
            x=compact(distance),
            y=compact(result.loss.numpy()),
            mode="markers",
            name="restarts",
            showlegend=False,
            marker=dict(size=8, color="red"),
            **middle,
        ),
        image_mosaic(shown, name="target, D(z*)", n_cols=3).update(**right),
    ]
    layout = _restarts_layout()
    layout["title"] = dict(text=title, font=dict(size=13))
    return go.Figure(data=traces, layout=layout)


@fixed_layout
def _restarts_layout() -> go.Figure:
    figure = make_subplots(
        rows=1,
        cols=3,
        column_widths=[0.42, 0.28, 0.30],
        horizontal_spacing=0.09,
        subplot_titles=(
            "paths z0 → z* on l(x, D(z)), dark: low",
            "loss at z* vs distance to the best",
            "target, then D(z*), best first",
        ),
    )
    figure.update_xaxes(title_text="z₁", row=1, col=1)
    figure.update_yaxes(title_text="z₂", scaleanchor="x", row=1, col=1)
    figure.update_xaxes(title_text="‖z* − best z*‖", row=1, col=2)
    figure.update_yaxes(title_text="loss", row=1, col=2)
    figure.update_xaxes(visible=False, row=1, col=3)
    figure.update_yaxes(visible=False, autorange="reversed", scaleanchor="x3", constrain="domain", row=1, col=3)
    return figure.update_layout(height=460, width=980, legend=dict(orientation="h", y=-0.15, bgcolor="#c8c8c8"))
