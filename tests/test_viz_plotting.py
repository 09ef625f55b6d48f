"""Plotly helpers shared by the lesson figures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gfe_viz.viz.plotting import compact, frame_slider, image_mosaic


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
