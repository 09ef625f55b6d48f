"""Small plotly helpers shared by the lesson figures: compact arrays and animation controls."""

from __future__ import annotations

import numpy as np


def compact(values) -> np.ndarray:
    """``values`` as float32: plotly stores arrays as base64 bytes, so this halves a figure's size."""
    return np.asarray(values, dtype=np.float32)


def play_button(frame_ms: int = 150) -> dict:
    """A layout.updatemenus entry with play and pause buttons for the figure's frames."""
    return dict(type="buttons", showactive=False, x=0.0, y=-0.08, xanchor="left", yanchor="top", buttons=[
        dict(label="▶ play", method="animate",
             args=[None, {"frame": {"duration": frame_ms, "redraw": True}, "fromcurrent": True,
                          "transition": {"duration": 0}}]),
        dict(label="❚❚ pause", method="animate",
             args=[[None], {"frame": {"duration": 0, "redraw": False}, "mode": "immediate"}])])


def frame_slider(names: list[str], labels: list[str], prefix: str = "") -> dict:
    """A layout.sliders entry with one step per frame (``names``), labelled by ``labels``."""
    steps = [dict(method="animate", label=label,
                  args=[[name], {"frame": {"duration": 0, "redraw": True}, "mode": "immediate"}])
             for name, label in zip(names, labels)]
    return dict(active=0, x=0.15, y=-0.05, len=0.85, currentvalue=dict(prefix=prefix), steps=steps)
