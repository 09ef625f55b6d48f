"""Figures of a 2-D latent's loss landscape with encoding paths on it, and notebook 1's view.

The numbers come from :mod:`gfe_viz.analysis.landscapes`: the landscape on a grid, the path a
solver took, the decoded image at each point of it. Here they become a heat map, lines and an
animation.
"""

from __future__ import annotations

import copy
from functools import lru_cache

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.colors import get_colorscale
from plotly.subplots import make_subplots
from torch import nn

from .._checks import check_positive, check_positive_int, check_tensor
from ..amd import AMD_MNIST, AMDOptions
from ..analysis.landscapes import (
    Landscape,
    as_images,
    check_latent_2d,
    decoded_images,
    encoded_limits,
    flow_path,
    loss_landscape,
    one_target,
    path_losses,
)
from ..encode import SOLVERS
from ..flows import ALPHA_SCHEDULES
from ..solvers import AMD, FIXED_STEP, RK4, Dopri5, Euler
from .interactive import InteractiveView, interactive_view, prerender_all
from .plotting import compact, frame_slider, play_button

EXCESS_FLOOR = 1e-5  # the colour scale shows log10(loss - min + floor)
GREYS = get_colorscale("Greys")  # spelled out, as a checked trace has it: plotly.js's own "Greys" is another scale


def trajectory_animation(
    decoder: nn.Module,
    x: torch.Tensor,
    landscape: Landscape,
    t: np.ndarray,
    path: np.ndarray,
    n_frames: int = 25,
    loss: str = "bce",
    title: str | None = None,
    losses: np.ndarray | None = None,
) -> go.Figure:
    """The path animated on the landscape, beside the decoded image at each frame and the target (0-255 pixels).

    ``losses`` (K,), the loss at each point of ``path``, comes with a recorded solve
    (``result.trajectory.sample_loss(i)``); without it the frames' losses are evaluated here.

    Traces: 0 landscape, 1 whole path (faint), 2 path so far, 3 current z, 4 reconstruction,
    5 target. Each of ``n_frames`` frames (evenly spaced steps of the path, always the first and
    the last) redraws traces 2-4; a play button and a slider drive them.
    """
    x = one_target(x)
    check_positive_int("n_frames", n_frames)
    path, t = np.asarray(path, dtype=float), np.asarray(t, dtype=float)
    if path.ndim != 2 or path.shape[1] != 2 or path.shape[0] != t.shape[0] or path.shape[0] == 0:
        raise ValueError(f"path must have shape (K, 2) and t shape (K,), got {path.shape} and {t.shape}")
    if losses is not None and np.shape(losses) != t.shape:
        raise ValueError(f"losses must have shape {t.shape} like t, got {np.shape(losses)}")
    keep = np.unique(np.round(np.linspace(0, path.shape[0] - 1, min(n_frames, path.shape[0]))).astype(int))
    images = pixels(decoded_images(decoder, path[keep], loss))
    losses = path_losses(decoder, x, path[keep], loss) if losses is None else np.asarray(losses, dtype=float)[keep]

    def moving(k: int) -> list[dict]:
        """Traces 2-4 at frame k."""
        so_far, now = path[: keep[k] + 1], path[keep[k]]
        return [
            dict(
                type="scatter",
                x=compact(so_far[:, 0]),
                y=compact(so_far[:, 1]),
                mode="lines+markers",
                name="path so far",
                line=dict(color="white", width=2),
                marker=dict(size=4),
            ),
            dict(
                type="scatter",
                x=compact(now[:1]),
                y=compact(now[1:]),
                mode="markers",
                name="z(t)",
                marker=dict(color="red", size=12, symbol="x"),
            ),
            _image_trace(images[k], "reconstruction"),
        ]

    def caption(k: int) -> str:
        return f"{title + ': ' if title else ''}t = {t[keep[k]]:.4g}, step {keep[k]}, loss = {losses[k]:.4f}"

    whole = dict(
        type="scatter",
        x=compact(path[:, 0]),
        y=compact(path[:, 1]),
        mode="lines",
        name="whole path",
        line=dict(color="rgba(255,255,255,0.35)", width=1),
    )
    panels = [1, 1, 1, 1, 2, 3]  # the panel of each trace
    data = [
        landscape_heatmap(landscape, colorbar_x=0.41).to_plotly_json(),
        whole,
        *moving(0),
        _image_trace(pixels(as_images(x).numpy())[0], "target"),
    ]
    data = [
        trace | {"xaxis": f"x{col if col > 1 else ''}", "yaxis": f"y{col if col > 1 else ''}"}
        for trace, col in zip(data, panels)
    ]
    names = [str(k) for k in range(len(keep))]
    frames = [
        dict(data=moving(k), traces=(2, 3, 4), name=name, layout=dict(title=dict(text=caption(k))))
        for k, name in enumerate(names)
    ]
    slider = frame_slider(names, [f"{v:.3g}" for v in t[keep]], prefix="t = ", y=-0.2)  # below the z₁ label
    layout = copy.deepcopy(_animation_layout()) | dict(
        title=dict(text=caption(0)), updatemenus=[play_button(y=-0.23)], sliders=[slider]
    )
    # Built unchecked: a checked figure costs plotly more than the solve. Its parts are fixed and tested
    # (the tests check the whole figure once more), the layout is checked once, in _animation_layout.
    return go.Figure(dict(data=data, layout=layout, frames=frames), _validate=False)


@lru_cache(maxsize=1)
def _animation_layout() -> dict:
    """The layout every animation of :func:`trajectory_animation` shares: panels, axes, size."""
    figure = make_subplots(
        rows=1,
        cols=3,
        column_widths=[0.5, 0.25, 0.25],
        horizontal_spacing=0.1,
        subplot_titles=("loss landscape l(x, D(z))", "reconstruction D(z(t))", "target x"),
    )
    figure.update_layout(width=980, height=460, showlegend=False, margin=dict(t=80, b=130))
    figure.update_xaxes(title_text="z₁", row=1, col=1)
    figure.update_yaxes(title_text="z₂", scaleanchor="x", scaleratio=1, row=1, col=1)
    for col in (2, 3):
        figure.update_xaxes(visible=False, row=1, col=col)
        figure.update_yaxes(visible=False, autorange="reversed", scaleanchor=f"x{col}", row=1, col=col)
    return figure.layout.to_plotly_json()


def flow_view(
    decoder: nn.Module,
    images: torch.Tensor,
    amd: AMDOptions = AMD_MNIST,
    tau: float = 1e4,
    resolution: int = 61,
    n_frames: int = 25,
    loss: str = "bce",
    precompute: bool = True,
) -> InteractiveView:
    """Notebook view: encode one of ``images`` with chosen settings and animate it on its landscape.

    Controls: ``image`` (index), ``z0_1``/``z0_2`` (start point), ``tau``, ``alpha_schedule``,
    ``solver``, ``steps`` (number of fixed steps of euler and rk4: dt = tau / steps). Each change
    encodes one image (:func:`~gfe_viz.analysis.landscapes.flow_path`); the landscapes of all
    images are computed with the view, so that the image slider never waits for one. With
    ``precompute``, the view also renders every image, alpha schedule and solver at the other
    controls' defaults when it is built, so that those choices show at once (rk4 and dopri5 to
    tau = 1e4 cost hundreds of decoder evaluations).
    """
    images = check_tensor("images", images, min_dim=2)
    check_latent_2d(decoder)
    check_positive("tau", tau)
    limits = encoded_limits(decoder, images, AMD(amd), tau, loss, margin=0.4)
    landscapes = [loss_landscape(decoder, images[i : i + 1], limits, resolution, loss) for i in range(images.shape[0])]

    def render(image, z0_1, z0_2, tau, alpha_schedule, solver, steps):
        x = images[image : image + 1]
        method = {"amd": AMD(amd), "euler": Euler(dt=tau / steps), "rk4": RK4(dt=tau / steps), "dopri5": Dopri5()}
        run = flow_path(decoder, x, method[solver], (z0_1, z0_2), tau, alpha_schedule, loss)
        figure = trajectory_animation(
            decoder, x, landscapes[image], run.t, run.path, n_frames, loss, title=solver, losses=run.loss
        )
        return figure, run.summary

    step = round((limits[1] - limits[0]) / 100, 3)
    controls = {
        "image": widgets.IntSlider(value=0, min=0, max=images.shape[0] - 1, description="image"),
        "z0_1": widgets.FloatSlider(value=0.0, min=limits[0], max=limits[1], step=step, description="z0₁"),
        "z0_2": widgets.FloatSlider(value=0.0, min=limits[2], max=limits[3], step=step, description="z0₂"),
        "tau": widgets.FloatLogSlider(value=tau, base=10, min=0, max=5, step=0.25, description="tau"),
        "alpha_schedule": widgets.Dropdown(options=ALPHA_SCHEDULES, value="constant", description="alpha(t)"),
        "solver": widgets.Dropdown(options=SOLVERS, value="amd", description="solver"),
        "steps": widgets.IntSlider(
            value=200, min=10, max=2000, step=10, description="euler/rk4 steps", style={"description_width": "initial"}
        ),
    }

    def figure_key(values: dict) -> tuple:
        """The control values, ``steps`` left out unless the solver takes fixed steps (it changes nothing else)."""
        fixed = values["solver"] in FIXED_STEP
        return tuple((name, value) for name, value in values.items() if fixed or name != "steps")

    view = interactive_view(render, controls, key=figure_key)
    if precompute:
        prerender_all(view, ("image", "alpha_schedule", "solver"))
    return view


# --- trace helpers ----------------------------------------------------------------------------------
def landscape_heatmap(landscape: Landscape, colorbar_x: float | None = None) -> go.Heatmap:
    """The heat map of log10(loss - min loss + 1e-5): the valleys near the minimum stay visible.

    Hovering shows the loss itself.
    """
    excess = np.log10(landscape.loss - landscape.loss.min() + EXCESS_FLOOR)
    # the title runs along the bar, so that it never reaches into a panel beside it
    colorbar = dict(title=dict(text="log10(loss − min)", side="right"), len=0.8, thickness=14) | (
        {"x": colorbar_x} if colorbar_x is not None else {}
    )
    return go.Heatmap(
        x=compact(landscape.z1),
        y=compact(landscape.z2),
        z=compact(excess),
        customdata=compact(landscape.loss),
        name="landscape",
        colorscale="Viridis",
        colorbar=colorbar,
        hovertemplate="z=(%{x:.3f}, %{y:.3f})<br>loss=%{customdata:.5f}<extra></extra>",
    )


def path_traces(name: str, path: np.ndarray, color: str) -> list[go.Scatter]:
    """A path (K, 2) as a line named ``name`` and a marker pair: start ○ and end ★."""
    if path.ndim != 2 or path.shape[1] != 2 or path.shape[0] == 0:
        raise ValueError(f"path {name!r} must have shape (K, 2) with K >= 1, got {path.shape}")
    ends = path[[0, -1]]
    return [
        go.Scatter(
            x=compact(path[:, 0]),
            y=compact(path[:, 1]),
            mode="lines+markers",
            name=name,
            legendgroup=name,
            line=dict(color=color, width=2),
            marker=dict(size=4),
        ),
        go.Scatter(
            x=compact(ends[:, 0]),
            y=compact(ends[:, 1]),
            mode="markers",
            name=f"{name}: z0 → z*",
            legendgroup=name,
            showlegend=False,
            marker=dict(color=color, size=[10, 16], symbol=["circle-open", "star"]),
        ),
    ]


def pixels(images: np.ndarray) -> np.ndarray:
    """Images with values in [0, 1] as 8-bit pixels 0-255: a quarter of the bytes of float32 in a figure."""
    return np.round(np.clip(images, 0.0, 1.0) * 255).astype(np.uint8)


def _image_trace(image: np.ndarray, name: str) -> dict:
    """An 8-bit image as a heat-map trace, a plain dict."""
    return dict(
        type="heatmap",
        z=image,
        name=name,
        colorscale=GREYS,
        reversescale=True,
        zmin=0,
        zmax=255,
        showscale=False,
        hovertemplate="%{z}<extra></extra>",
    )
