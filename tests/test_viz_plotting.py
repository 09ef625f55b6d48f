"""Plotly helpers shared by the lesson figures."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from plotly.subplots import make_subplots

from gfe_viz.viz.plotting import compact, fixed_layout, frame_slider, image_mosaic


def test_mosaic_tiles_images_with_blank_separators():
    images = torch.arange(5 * 2 * 3, dtype=torch.float32).reshape(5, 1, 2, 3) / 30
    trace = image_mosaic(images, n_cols=3)
    z = np.array(trace.z, dtype=float)
    assert z.shape == (2 * 3 - 1, 3 * 4 - 1)
    assert np.allclose(z[0:2, 4:7], images[1, 0].numpy())
    assert np.allclose(z[3:5, 4:7], images[4, 0].numpy())
    assert np.isnan(z[2]).all() and np.isnan(z[:, 3]).all() and np.isnan(z[3:5, 8:]).all()
    with pytest.raises(ValueError, match="images must have shape"):
        image_mosaic(torch.zeros(2, 3, 4, 4))


def test_compact_is_float32_and_frame_slider_has_one_step_per_frame():
    assert compact([1.0, 2.5]).dtype == np.float32
    slider = frame_slider(["f0", "f1", "f2"], ["0", "1", "2"], prefix="t = ")
    assert [step["args"][0] for step in slider["steps"]] == [["f0"], ["f1"], ["f2"]]
    assert slider["currentvalue"]["prefix"] == "t = "


def test_fixed_layout_builds_once_and_hands_out_copies():
    built = []

    @fixed_layout
    def layout():
        built.append(1)
        return make_subplots(rows=1, cols=2, subplot_titles=("left", "right")).update_layout(width=500)

    first = layout()
    first["width"] = 10
    first["annotations"][0]["text"] = "changed"
    second = layout()
    assert len(built) == 1 and "template" not in second
    assert second["width"] == 500 and second["annotations"][0]["text"] == "left"
    figure = go.Figure(data=[dict(type="scatter", x=[1], y=[2], xaxis="x2", yaxis="y2")], layout=layout())
    assert figure.layout.xaxis2.domain[0] > 0.5 and figure.layout.template.layout.colorway  # the default template
