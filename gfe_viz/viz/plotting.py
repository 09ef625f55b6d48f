"""Small plotly helpers shared by the lesson figures: compact arrays, image tiles, animation controls,
layouts made once."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable

import numpy as np
import plotly.graph_objects as go
import torch

from .._checks import check_positive_int


def compact(values) -> np.ndarray:
    """``values`` as float32: plotly stores arrays as base64 bytes, so this halves a figure's size."""
    return np.asarray(values, dtype=np.float32)


def fixed_layout(build: Callable[[], go.Figure]) -> Callable[[], dict]:
    """``build`` (a function making an empty figure: subplots, axes, sizes) turned into one returning
    that figure's layout as a plain dict, built once and copied on every call.

    A view redraws the same panels many times; ``go.Figure(data=traces, layout=layout())`` then
    skips ``make_subplots`` and the checks of each layout update, most of a light figure's build
    time. The layout leaves out the template, which plotly adds again, cheaply, by reference.
    """

    @functools.cache
    def made() -> dict:
        layout = build().layout.to_plotly_json()
        layout.pop("template", None)
        return layout

    @functools.wraps(build)
    def layout() -> dict:
        return copy.deepcopy(made())

    return layout


def play_button(frame_ms: int = 150, y: float = -0.08) -> dict:
    """A layout.updatemenus entry with play and pause buttons for the figure's frames (every
    animation of the lessons uses it, so that they all look and read the same)."""
    return dict(
        type="buttons",
        showactive=False,
        x=0.0,
        y=y,
        xanchor="left",
        yanchor="top",
        buttons=[
            dict(
                label="▶ play",
                method="animate",
                args=[
                    None,
                    {
                        "frame": {"duration": frame_ms, "redraw": True},
                        "fromcurrent": True,
                        "transition": {"duration": 0},
                    },
                ],
            ),
            dict(
                label="❚❚ pause",
                method="animate",
                args=[[None], {"frame": {"duration": 0, "redraw": False}, "mode": "immediate"}],
            ),
        ],
    )


def frame_slider(names: list[str], labels: list[str], prefix: str = "", y: float = -0.05) -> dict:
    """A layout.sliders entry with one step per frame (``names``), labelled by ``labels``."""
    steps = [
        dict(
            method="animate",
            label=label,
            args=[[name], {"frame": {"duration": 0, "redraw": True}, "mode": "immediate"}],
        )
        for name, label in zip(names, labels)
    ]
    return dict(active=0, x=0.15, y=y, len=0.85, currentvalue=dict(prefix=prefix), steps=steps)


def image_mosaic(images: torch.Tensor | np.ndarray, name: str = "images", n_cols: int | None = None) -> go.Heatmap:
    """Images (K, H, W) or (K, 1, H, W) in [0, 1] tiled in rows of ``n_cols`` (default: all) as one
    heat map (float32), the tiles separated by one blank (NaN) pixel."""
    array = np.asarray(images.detach().cpu() if isinstance(images, torch.Tensor) else images, dtype=float)
    if array.ndim == 4 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 3 or array.shape[0] == 0:
        raise ValueError(f"images must have shape (K, H, W) or (K, 1, H, W) with K >= 1, got {array.shape}")
    k, h, w = array.shape
    n_cols = k if n_cols is None else n_cols
    check_positive_int("n_cols", n_cols)
    n_rows = -(-k // n_cols)
    tiled = np.full((n_rows * (h + 1) - 1, n_cols * (w + 1) - 1), np.nan)
    for i, image in enumerate(array):
        r, c = divmod(i, n_cols)
        tiled[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = image
    return go.Heatmap(
        z=compact(tiled),
        name=name,
        colorscale="Greys",
        reversescale=True,
        zmin=0,
        zmax=1,
        showscale=False,
        hoverongaps=False,
        hovertemplate="%{z}<extra>" + name + "</extra>",
    )
