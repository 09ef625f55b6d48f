"""The loss landscape of a 2-D latent: l(x, D(z)) on a grid of z, with encoding trajectories on it.

With a 2-D latent the whole encoding problem of one image fits in a picture: the heat map is the
function the gradient flow descends, the trajectory is what the solver did, and the decoded
image at each point of the trajectory shows what the latent means.
"""

from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from torch import nn

from .._checks import check_positive, check_positive_int, check_tensor
from ..amd import AMD_MNIST, AMDOptions
from ..encode import SOLVERS, encode
from ..flows import ALPHA_SCHEDULES, GradientFlow
from ..solution import EncodeResult, Status
from ..solvers import AMD, FIXED_STEP, RK4, Dopri5, Euler
from .interactive import InteractiveView, interactive_view
from .plotting import compact, frame_slider, play_button

EXCESS_FLOOR = 1e-5  # the colour scale shows log10(loss - min + floor)
PATH_COLORS = ("#ffffff", "#ff7f0e", "#2ca02c", "#d62728")


@dataclass
class Landscape:
    """Loss of one target on a regular grid of 2-D latents: ``loss[j, i]`` is at ``(z1[i], z2[j])``."""

    z1: np.ndarray
    z2: np.ndarray
    loss: np.ndarray

    def argmin(self) -> np.ndarray:
        """The grid point with the lowest loss, as (z1, z2)."""
        j, i = np.unravel_index(np.argmin(self.loss), self.loss.shape)
        return np.array([self.z1[i], self.z2[j]])


def loss_landscape(decoder: nn.Module, x: torch.Tensor, limits: tuple[float, float, float, float],
                   resolution: int = 61, loss: str = "bce") -> Landscape:
    """l(x, D(z)) for one target ``x`` (shape (1, ...)) on a ``resolution``² grid over ``limits``.

    ``limits`` is (z1_min, z1_max, z2_min, z2_max). The grid is decoded in one batch.
    """
    x = one_target(x)
    _check_limits(limits)
    check_positive_int("resolution", resolution)
    _check_latent_2d(decoder)
    z1 = torch.linspace(limits[0], limits[1], resolution, dtype=x.dtype)
    z2 = torch.linspace(limits[2], limits[3], resolution, dtype=x.dtype)
    grid = torch.stack(torch.meshgrid(z1, z2, indexing="xy"), dim=-1).reshape(-1, 2)
    flow = GradientFlow(decoder, loss=loss)
    with torch.no_grad():
        values = flow.loss(grid, x.expand(grid.shape[0], *x.shape[1:]))
    return Landscape(z1=z1.numpy(), z2=z2.numpy(), loss=values.reshape(resolution, resolution).numpy())


def latent_limits(points: torch.Tensor | np.ndarray, margin: float = 0.5) -> tuple[float, float, float, float]:
    """A square box around 2-D ``points`` (N, 2), padded by ``margin`` times its side on every edge."""
    points = np.asarray(points, dtype=float)
    if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] == 0:
        raise ValueError(f"points must have shape (N, 2) with N >= 1, got {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("points must be finite")
    check_positive("margin", margin)
    low, high = points.min(0), points.max(0)
    center, side = (low + high) / 2, max(float((high - low).max()), 1e-3)
    half = side * (0.5 + margin)
    return (float(center[0] - half), float(center[0] + half), float(center[1] - half), float(center[1] + half))


def sample_path(result: EncodeResult, sample: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Times (K,) and positions (K, 2) that sample ``sample`` visited, from a recorded encode.

    For AMD these are the accepted steps; for the classical solvers the saved times (finite ones).
    """
    if result.trajectory is None:
        raise ValueError("result has no trajectory: encode with record=True")
    if not 0 <= sample < result.z.shape[0]:
        raise ValueError(f"sample must be in [0, {result.z.shape[0]}), got {sample!r}")
    t, z = result.trajectory.sample(sample)
    return t.double().numpy(), z.double().numpy()


def decoded_images(decoder: nn.Module, z: torch.Tensor | np.ndarray, loss: str = "bce") -> np.ndarray:
    """What latents ``z`` (K, d) decode to, as (K, H, W) images: sigmoid of the logits for BCE."""
    dtype = next(decoder.parameters(), torch.empty(0)).dtype
    z = torch.as_tensor(np.asarray(z), dtype=dtype)
    with torch.no_grad():
        out = decoder(z)
    out = torch.sigmoid(out) if loss == "bce" else out
    return _as_images(out).numpy()


def trajectory_animation(decoder: nn.Module, x: torch.Tensor, landscape: Landscape, t: np.ndarray, path: np.ndarray,
                         n_frames: int = 25, loss: str = "bce", title: str | None = None,
                         losses: np.ndarray | None = None) -> go.Figure:
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
    if losses is None:
        with torch.no_grad():
            losses = GradientFlow(decoder, loss=loss).loss(torch.as_tensor(path[keep], dtype=x.dtype),
                                                           x.expand(len(keep), *x.shape[1:])).numpy()
    else:
        losses = np.asarray(losses, dtype=float)[keep]

    figure = make_subplots(rows=1, cols=3, column_widths=[0.5, 0.25, 0.25], horizontal_spacing=0.1,
                           subplot_titles=("loss landscape l(x, D(z))", "reconstruction D(z(t))", "target x"))
    figure.add_trace(landscape_heatmap(landscape, colorbar_x=0.41), 1, 1)
    figure.add_trace(go.Scatter(x=compact(path[:, 0]), y=compact(path[:, 1]), mode="lines", name="whole path",
                                line=dict(color="rgba(255,255,255,0.35)", width=1)), 1, 1)

    def moving(k: int) -> list[dict]:
        """Traces 2-4 at frame k as plain dicts: plotly checks them once, in the figure, a third of
        the time that go objects (checked when made, again in a frame, again in the figure) take."""
        so_far, now = path[:keep[k] + 1], path[keep[k]]
        return [dict(type="scatter", x=compact(so_far[:, 0]), y=compact(so_far[:, 1]), mode="lines+markers",
                     name="path so far", line=dict(color="white", width=2), marker=dict(size=4)),
                dict(type="scatter", x=compact(now[:1]), y=compact(now[1:]), mode="markers", name="z(t)",
                     marker=dict(color="red", size=12, symbol="x")),
                _image_trace(images[k], "reconstruction")]

    for trace, col in zip(moving(0), (1, 1, 2)):
        figure.add_trace(trace, 1, col)
    figure.add_trace(_image_trace(pixels(_as_images(x).numpy())[0], "target"), 1, 3)

    def caption(k: int) -> str:
        return f"{title + ': ' if title else ''}t = {t[keep[k]]:.4g}, step {keep[k]}, loss = {losses[k]:.4f}"

    names = [str(k) for k in range(len(keep))]
    figure.frames = [dict(data=moving(k), traces=[2, 3, 4], name=name, layout=dict(title=dict(text=caption(k))))
                     for k, name in enumerate(names)]
    slider = frame_slider(names, [f"{v:.3g}" for v in t[keep]], prefix="t = ", y=-0.2)  # below the z₁ label
    figure.update_layout(title=caption(0), width=980, height=460, showlegend=False, margin=dict(t=80, b=130),
                         updatemenus=[play_button(y=-0.23)], sliders=[slider])
    figure.update_xaxes(title_text="z₁", row=1, col=1)
    figure.update_yaxes(title_text="z₂", scaleanchor="x", scaleratio=1, row=1, col=1)
    for col in (2, 3):
        figure.update_xaxes(visible=False, row=1, col=col)
        figure.update_yaxes(visible=False, autorange="reversed", scaleanchor=f"x{col}", row=1, col=col)
    return figure


def flow_view(decoder: nn.Module, images: torch.Tensor, amd: AMDOptions = AMD_MNIST, tau: float = 1e4,
              resolution: int = 61, n_frames: int = 25, loss: str = "bce") -> InteractiveView:
    """Notebook view: encode one of ``images`` with chosen settings and animate it on its landscape.

    Controls: ``image`` (index), ``z0_1``/``z0_2`` (start point), ``tau``, ``alpha_schedule``,
    ``solver``, ``steps`` (number of fixed steps of euler and rk4: dt = tau / steps). Each change
    encodes one image (``record=True``); the landscapes of all images are computed with the view,
    so that the image slider never waits for one.
    """
    images = check_tensor("images", images, min_dim=2)
    _check_latent_2d(decoder)
    check_positive("tau", tau)
    with torch.no_grad():
        centers = encode(decoder, images, solver=AMD(amd), tau=tau, loss=loss).z
    limits = latent_limits(torch.cat([centers, torch.zeros(1, 2)]).numpy(), margin=0.4)

    landscapes = [loss_landscape(decoder, images[i:i + 1], limits, resolution, loss) for i in range(images.shape[0])]

    def render(image, z0_1, z0_2, tau, alpha_schedule, solver, steps):
        x = images[image:image + 1]
        method = {"amd": AMD(amd), "euler": Euler(dt=tau / steps), "rk4": RK4(dt=tau / steps), "dopri5": Dopri5()}
        result = encode(decoder, x, solver=method[solver], loss=loss, z0=torch.tensor([[z0_1, z0_2]]), tau=tau,
                        record=True, alpha_schedule=alpha_schedule)
        t, path = sample_path(result)
        figure = trajectory_animation(decoder, x, landscapes[image], t, path, n_frames, loss, title=solver,
                                      losses=result.trajectory.sample_loss(0).double().numpy())
        return figure, result_summary(result)

    step = round((limits[1] - limits[0]) / 100, 3)
    controls = {
        "image": widgets.IntSlider(value=0, min=0, max=images.shape[0] - 1, description="image"),
        "z0_1": widgets.FloatSlider(value=0.0, min=limits[0], max=limits[1], step=step, description="z0₁"),
        "z0_2": widgets.FloatSlider(value=0.0, min=limits[2], max=limits[3], step=step, description="z0₂"),
        "tau": widgets.FloatLogSlider(value=tau, base=10, min=0, max=5, step=0.25, description="tau"),
        "alpha_schedule": widgets.Dropdown(options=ALPHA_SCHEDULES, value="constant", description="alpha(t)"),
        "solver": widgets.Dropdown(options=SOLVERS, value="amd", description="solver"),
        "steps": widgets.IntSlider(value=200, min=10, max=2000, step=10, description="euler/rk4 steps",
                                   style={"description_width": "initial"}),
    }

    def figure_key(values: dict) -> tuple:
        """The control values, ``steps`` left out unless the solver takes fixed steps (it changes nothing else)."""
        fixed = values["solver"] in FIXED_STEP
        return tuple((name, value) for name, value in values.items() if fixed or name != "steps")

    return interactive_view(render, controls, key=figure_key)


def result_summary(result: EncodeResult, sample: int = 0) -> dict[str, float | int | str]:
    """The numbers a view reports about one sample of an encode: loss, NFE, steps, status, z*."""
    z = result.z[sample].tolist()
    return {"loss": float(result.loss[sample]), "nfe": int(result.stats.nfe[sample]),
            "accepted": int(result.stats.accepted[sample]), "rejected": int(result.stats.rejected[sample]),
            "t_end": float(result.stats.t[sample]), "status": Status(int(result.status[sample])).name.lower(),
            **{f"z*_{k + 1}": float(v) for k, v in enumerate(z)}}


# --- trace helpers ----------------------------------------------------------------------------------
def landscape_heatmap(landscape: Landscape, colorbar_x: float | None = None) -> go.Heatmap:
    """The heat map of log10(loss - min loss + 1e-5): the valleys near the minimum stay visible.

    Hovering shows the loss itself.
    """
    excess = np.log10(landscape.loss - landscape.loss.min() + EXCESS_FLOOR)
    # the title runs along the bar, so that it never reaches into a panel beside it
    colorbar = dict(title=dict(text="log10(loss − min)", side="right"), len=0.8, thickness=14) | (
        {"x": colorbar_x} if colorbar_x is not None else {})
    return go.Heatmap(x=compact(landscape.z1), y=compact(landscape.z2), z=compact(excess),
                      customdata=compact(landscape.loss), name="landscape", colorscale="Viridis", colorbar=colorbar,
                      hovertemplate="z=(%{x:.3f}, %{y:.3f})<br>loss=%{customdata:.5f}<extra></extra>")


def path_traces(name: str, path: np.ndarray, color: str) -> list[go.Scatter]:
    """A path (K, 2) as a line named ``name`` and a marker pair: start ○ and end ★."""
    if path.ndim != 2 or path.shape[1] != 2 or path.shape[0] == 0:
        raise ValueError(f"path {name!r} must have shape (K, 2) with K >= 1, got {path.shape}")
    ends = path[[0, -1]]
    return [go.Scatter(x=compact(path[:, 0]), y=compact(path[:, 1]), mode="lines+markers", name=name, legendgroup=name,
                       line=dict(color=color, width=2), marker=dict(size=4)),
            go.Scatter(x=compact(ends[:, 0]), y=compact(ends[:, 1]), mode="markers", name=f"{name}: z0 → z*",
                       legendgroup=name, showlegend=False,
                       marker=dict(color=color, size=[10, 16], symbol=["circle-open", "star"]))]


def pixels(images: np.ndarray) -> np.ndarray:
    """Images with values in [0, 1] as 8-bit pixels 0-255: a quarter of the bytes of float32 in a figure."""
    return np.round(np.clip(images, 0.0, 1.0) * 255).astype(np.uint8)


def _image_trace(image: np.ndarray, name: str) -> dict:
    """An 8-bit image as a heat-map trace, a plain dict (see ``moving`` in :func:`trajectory_animation`)."""
    return dict(type="heatmap", z=image, name=name, colorscale="Greys", reversescale=True, zmin=0, zmax=255,
                showscale=False, hovertemplate="%{z}<extra></extra>")


def _as_images(out: torch.Tensor) -> torch.Tensor:
    images = out.reshape(out.shape[0], *[s for s in out.shape[1:] if s != 1]) if out.dim() > 3 else out
    if images.dim() != 3:
        raise ValueError(f"expected single-channel images (K, H, W) or (K, 1, H, W), got shape {tuple(out.shape)}")
    return images


def one_target(x: torch.Tensor, what: str = "target") -> torch.Tensor:
    """``x`` checked to be a finite tensor holding one sample, shape (1, ...)."""
    x = check_tensor("x", x)
    if x.shape[0] != 1:
        raise ValueError(f"x must hold one {what}, shape (1, ...), got {tuple(x.shape)}")
    return x


def _check_limits(limits) -> None:
    if (not isinstance(limits, (tuple, list)) or len(limits) != 4 or not limits[0] < limits[1]
            or not limits[2] < limits[3]):
        raise ValueError(f"limits must be (z1_min, z1_max, z2_min, z2_max) with min < max, got {limits!r}")


def _check_latent_2d(decoder: nn.Module) -> None:
    if not isinstance(decoder, nn.Module):
        raise TypeError(f"decoder must be a torch.nn.Module, got {type(decoder).__name__}")
    if getattr(decoder, "latent_dim", 2) != 2:
        raise ValueError(f"decoder must have a 2-D latent to draw a landscape, got latent_dim={decoder.latent_dim}")
