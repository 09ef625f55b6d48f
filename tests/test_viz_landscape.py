"""The landscape heat map, paths on it, the animation and the notebook-1 view."""

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from gfe_viz import AMD, AMD_MNIST, RK4, encode
from gfe_viz.analysis.landscapes import latent_limits, loss_landscape, sample_path
from gfe_viz.style import PATH_COLORS
from gfe_viz.viz.landscape import EXCESS_FLOOR, flow_view, landscape_heatmap, path_traces, pixels, trajectory_animation


def test_landscape_heatmap_and_one_line_per_path(linear):
    decoder, x = linear
    land = loss_landscape(decoder, x, (-2.0, 2.0, -2.0, 2.0), resolution=11, loss="mse")
    paths = {"a": np.array([[0.0, 0.0], [1.0, 1.0]]), "b": np.array([[1.0, 0.0], [0.5, 0.5], [0.2, 0.1]])}
    traces = [landscape_heatmap(land)] + [
        trace for k, (name, path) in enumerate(paths.items()) for trace in path_traces(name, path, PATH_COLORS[k])
    ]
    assert [trace.type for trace in traces] == ["heatmap", "scatter", "scatter", "scatter", "scatter"]
    assert [trace.name for trace in traces] == ["landscape", "a", "a: z0 → z*", "b", "b: z0 → z*"]
    heat = traces[0]
    assert np.allclose(heat.z, np.log10(land.loss - land.loss.min() + EXCESS_FLOOR), rtol=1e-5)
    assert np.allclose(heat.customdata, land.loss, rtol=1e-6)
    assert list(traces[4].x) == pytest.approx([1.0, 0.2]) and list(traces[3].y) == pytest.approx([0, 0.5, 0.1])


def test_animation_frames_follow_the_path_and_decode_it(tiny):
    decoder, images = tiny
    x = images[:1]
    result = encode(decoder, x, tau=200.0, record=True)
    t, path = sample_path(result)
    land = loss_landscape(decoder, x, latent_limits(path), resolution=9)
    figure = trajectory_animation(decoder, x, land, t, path, n_frames=5)
    names = ["landscape", "whole path", "path so far", "z(t)", "reconstruction", "target"]
    assert [trace.name for trace in figure.data] == names
    assert len(figure.frames) == min(5, len(path)) and all(frame.traces == (2, 3, 4) for frame in figure.frames)
    last = figure.frames[-1]
    assert np.allclose([last.data[1].x[0], last.data[1].y[0]], path[-1], atol=1e-6)
    assert len(last.data[0].x) == len(path)
    decoded = torch.sigmoid(decoder(torch.tensor(path[-1:], dtype=torch.float32)))[0, 0].detach().numpy()
    assert np.abs(np.asarray(last.data[2].z) / 255 - decoded).max() <= 0.5 / 255 + 1e-6
    assert np.abs(np.asarray(figure.data[5].z) / 255 - x[0, 0].numpy()).max() <= 0.5 / 255 + 1e-6
    assert figure.layout.updatemenus[0].buttons[0].method == "animate"
    assert [b.label for b in figure.layout.updatemenus[0].buttons] == ["▶ play", "❚❚ pause"]
    assert figure.layout.sliders[0].y < figure.layout.updatemenus[0].y + 0.1 < 0  # both below the z₁ axis label
    assert figure.data[0].colorbar.title.side == "right"  # along the bar, not into the next panel
    assert [step.args[0][0] for step in figure.layout.sliders[0].steps] == [frame.name for frame in figure.frames]
    assert f"loss = {float(result.loss[0]):.4f}" in last.layout.title.text
    go.Figure(figure.to_dict())  # built unchecked: plotly accepts every part of it


@pytest.mark.parametrize("solver", [AMD(AMD_MNIST), RK4(dt=5.0)], ids=["amd", "rk4"])
def test_animation_takes_the_losses_a_recorded_solve_carries(tiny, solver):
    decoder, images = tiny
    x = images[:1]
    result = encode(decoder, x, solver=solver, tau=200.0, record=True)
    t, path = sample_path(result)
    land = loss_landscape(decoder, x, latent_limits(path), resolution=5)
    carried = trajectory_animation(
        decoder, x, land, t, path, n_frames=6, losses=result.trajectory.sample_loss(0).numpy()
    )
    evaluated = trajectory_animation(decoder, x, land, t, path, n_frames=6)
    titles = [frame.layout.title.text for frame in carried.frames]
    assert titles == [frame.layout.title.text for frame in evaluated.frames] and len(set(titles)) == len(titles)
    with pytest.raises(ValueError, match=rf"losses must have shape \({len(t)},\) like t, got \(2,\)"):
        trajectory_animation(decoder, x, land, t, path, losses=np.zeros(2))


def test_pixels_map_unit_interval_to_bytes():
    assert pixels(np.array([[-0.5, 0.0, 0.5, 1.0, 2.0]])).tolist() == [[0, 0, 128, 255, 255]]
    assert pixels(np.zeros((1, 2, 2))).dtype == np.uint8


def test_flow_view_controls_drive_the_encoding(tiny):
    decoder, images = tiny
    view = flow_view(decoder, images, tau=100.0, resolution=9, n_frames=4)
    assert set(view.controls) == {"image", "z0_1", "z0_2", "tau", "alpha_schedule", "solver", "steps"}
    assert view.summary["nfe"] >= 2 and view.figure.data[5].z is not None
    first_target = np.array(view.figure.data[5].z)

    view.controls["image"].value = 2
    assert np.array_equal(view.figure.data[5].z, pixels(images[2, 0].numpy()))
    assert not np.array_equal(first_target, view.figure.data[5].z)

    view.update(solver="rk4", steps=20)
    assert view.summary["nfe"] == 1 + 4 * 20 and view.figure.layout.title.text.startswith("rk4")
    assert view.summary["t_end"] == pytest.approx(100.0)

    view.update(solver="amd", z0_1=0.5, z0_2=-0.5)
    start = view.figure.frames[0].data[1]
    assert (start.x[0], start.y[0]) == pytest.approx((0.5, -0.5))
    expected = encode(decoder, images[2:3], z0=torch.tensor([[0.5, -0.5]]), tau=100.0, gradient="fused")
    assert view.summary["loss"] == pytest.approx(float(expected.loss[0]), rel=1e-6)


def count_solves(monkeypatch) -> list[str]:
    """The names of the solvers the notebook-1 view runs from now on, in order."""
    import gfe_viz.viz.landscape as landscape

    real, solvers = landscape.flow_path, []
    monkeypatch.setattr(
        landscape, "flow_path", lambda *args, **kwargs: solvers.append(args[2].name) or real(*args, **kwargs)
    )
    return solvers


def test_flow_view_solves_again_for_a_new_step_count_only_with_a_fixed_step_solver(tiny, monkeypatch):
    decoder, images = tiny
    solvers = count_solves(monkeypatch)
    view = flow_view(decoder, images, tau=100.0, resolution=9, n_frames=4, precompute=False)
    solvers.clear()
    shown = view.output.outputs[0]
    view.update(steps=50)  # AMD takes no fixed steps: the same figure, no solve
    assert solvers == [] and view.output.outputs[0] == shown
    assert "Error" not in str(view.output.outputs)  # a render that raised shows its traceback in the Output
    view.update(solver="euler")
    view.update(steps=20)
    assert solvers == ["euler", "euler"]
    fresh = flow_view(decoder, images, tau=100.0, resolution=9, n_frames=4, precompute=False)
    fresh.update(solver="euler", steps=20)
    assert fresh.output.outputs[0] == view.output.outputs[0] and fresh.summary == view.summary


def test_flow_view_prerenders_every_image_schedule_and_solver_as_a_fresh_render_draws_them(tiny, monkeypatch):
    decoder, images = tiny
    solvers = count_solves(monkeypatch)
    view = flow_view(decoder, images, tau=100.0, resolution=9, n_frames=4)
    assert sorted(solvers) == ["amd"] * (images.shape[0] + 1) + ["dopri5", "euler", "rk4"]  # the default once
    assert view.cache_size == 32 + images.shape[0] + 2 + 4  # the prerendered settings push none of the others out
    fresh = flow_view(decoder, images, tau=100.0, resolution=9, n_frames=4, precompute=False)
    solvers.clear()
    for setting in ({"image": 2}, {"alpha_schedule": "exponential"}, {"solver": "rk4"}, {"solver": "dopri5"}):
        view.update(**setting)
        assert solvers == [], setting  # from the cache
        fresh.update(**setting)
        assert fresh.output.outputs[0] == view.output.outputs[0] and fresh.summary == view.summary
        view.reset()
        fresh.reset()
        solvers.clear()
    view.update(z0_1=0.5)  # a continuous control: rendered when moved
    assert solvers == ["amd"]


def test_flow_view_computes_every_landscape_with_the_view(tiny, monkeypatch):
    import gfe_viz.viz.landscape as landscape

    decoder, images = tiny
    real, made = landscape.loss_landscape, []
    monkeypatch.setattr(
        landscape, "loss_landscape", lambda *args, **kwargs: made.append(args[1]) or real(*args, **kwargs)
    )
    view = flow_view(decoder, images, tau=100.0, resolution=9, n_frames=4)
    assert [torch.equal(x, images[i : i + 1]) for i, x in enumerate(made)] == [True] * images.shape[0]
    view.update(image=2)
    second = np.array(view.figure.data[0].z)
    view.update(image=1)
    assert len(made) == images.shape[0]  # the image slider only looks its landscape up
    assert not np.array_equal(second, np.array(view.figure.data[0].z))
