"""The latent-space lesson: 2-D codes of GFE and the AE, interpolation between two images, and
how the GFE code of one image depends on where its gradient flow starts.

A GFE "model" is its decoder (codes come from :func:`gfe_viz.encode`), an AE is an
:class:`~gfe_viz.models.Autoencoder` (codes come from its encoder).
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from torch import nn

from .._checks import check_non_negative, check_positive, check_positive_int, check_tensor
from ..analysis.landscapes import latent_limits, loss_landscape, one_target, sample_path
from ..demo_models import DEMO_ENCODING
from ..encode import encode
from ..flows import GradientFlow
from ..models import Autoencoder
from ..solution import EncodeResult
from ..training import EncodeSettings
from .interactive import InteractiveView, interactive_view
from .landscape import landscape_heatmap
from .plotting import compact, image_mosaic

CLASS_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
                "#17becf")


def decoder_of(model: nn.Module) -> nn.Module:
    """The decoder of an :class:`Autoencoder`, or the model itself (a GFE decoder)."""
    return model.decoder if isinstance(model, Autoencoder) else model


def latent_codes(model: nn.Module, images: torch.Tensor, encoding: EncodeSettings = DEMO_ENCODING,
                 seed: int = 0) -> torch.Tensor:
    """Codes (N, d) of ``images``: the AE's encoder output, or GFE's z* with ``encoding`` (z0 drawn from ``seed``)."""
    images = check_tensor("images", images, min_dim=2)
    with torch.no_grad():
        if isinstance(model, Autoencoder):
            return model.encode(images)
        return encode(model, images, z0=encoding.z0, generator=torch.Generator().manual_seed(seed),
                      **encoding.kwargs()).z


def neighbour_accuracy(codes: torch.Tensor, labels: torch.Tensor, k: int = 5) -> float:
    """The fraction of codes whose ``k`` nearest other codes vote (most often) for their own label.

    A number for how well a latent space sorts the classes without being told them; ties go to
    the smaller label.
    """
    check_positive_int("k", k)
    codes, labels = torch.as_tensor(codes, dtype=torch.float64), torch.as_tensor(labels)
    if codes.dim() != 2 or labels.shape != (codes.shape[0],) or not k < codes.shape[0]:
        raise ValueError(f"codes must have shape (N, d) with N > k={k} and labels shape (N,), "
                         f"got {tuple(codes.shape)} and {tuple(labels.shape)}")
    distance = torch.cdist(codes, codes).fill_diagonal_(float("inf"))
    neighbours = labels[distance.topk(k, largest=False).indices]
    votes = torch.nn.functional.one_hot(neighbours, int(labels.max()) + 1).sum(1)
    return (votes.argmax(1) == labels).double().mean().item()


def latent_scatter_figure(codes: dict[str, torch.Tensor], labels: torch.Tensor,
                          class_names: list[str] | None = None) -> go.Figure:
    """One panel per model (``codes``: name -> (N, 2)) with the codes coloured by class.

    Traces: for each panel, one per class present in ``labels`` (legend shown once).
    """
    labels = np.asarray(labels)
    if not codes:
        raise ValueError("codes must map at least one model name to (N, 2) codes, got none")
    for name, z in codes.items():
        if tuple(z.shape) != (labels.shape[0], 2):
            raise ValueError(f"codes[{name!r}] must have shape ({labels.shape[0]}, 2) like labels, "
                             f"got {tuple(z.shape)}")
    classes = sorted(set(labels.tolist()))
    figure = make_subplots(rows=1, cols=len(codes), subplot_titles=[f"{name} codes" for name in codes],
                           horizontal_spacing=0.08)
    for col, (name, z) in enumerate(codes.items(), start=1):
        z = np.asarray(z, dtype=float)
        for c in classes:
            keep = labels == c
            label = class_names[c] if class_names is not None else str(c)
            figure.add_trace(go.Scatter(x=compact(z[keep, 0]), y=compact(z[keep, 1]), mode="markers",
                                        name=label, legendgroup=label, showlegend=col == 1,
                                        marker=dict(size=5, color=CLASS_COLORS[c % len(CLASS_COLORS)])), 1, col)
        figure.update_xaxes(title_text="z₁", row=1, col=col)
        figure.update_yaxes(title_text="z₂", row=1, col=col)
    figure.update_layout(height=460, width=440 * len(codes) + 100, legend=dict(title="class"),
                         title=dict(text="Two-dimensional latent codes, coloured by class", font=dict(size=13)))
    return figure


def interpolation_view(models: dict[str, nn.Module], images: torch.Tensor, codes: dict[str, torch.Tensor],
                       image_a: int = 0, image_b: int = 1) -> InteractiveView:
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
        figure = make_subplots(rows=len(models), cols=2, column_widths=[0.45, 0.55], horizontal_spacing=0.08,
                               vertical_spacing=0.12, subplot_titles=[t for name in models for t in (
                                   f"{name}: codes and the segment z_a → z_b", f"{name}: x_a, D(z(s)), x_b")])
        summary: dict = {"s": float(s)}
        for row, (name, model) in enumerate(models.items(), start=1):
            z = codes[name]
            z_s = (1 - s) * z[image_a] + s * z[image_b]
            decoder = decoder_of(model)
            flow = GradientFlow(decoder)
            with torch.no_grad():
                decoded = torch.sigmoid(decoder(z_s[None]))
                ends = images[[image_a, image_b]]
                losses = flow.loss(z_s[None].expand(2, -1), ends)
            summary[f"{name}_loss_a"], summary[f"{name}_loss_b"] = float(losses[0]), float(losses[1])
            zn = z.numpy()
            figure.add_trace(go.Scatter(x=compact(zn[:, 0]), y=compact(zn[:, 1]), mode="markers",
                                        name="codes", showlegend=False, marker=dict(size=3, color="lightgray")), row, 1)
            segment = zn[[image_a, image_b]]
            figure.add_trace(go.Scatter(x=segment[:, 0].tolist(), y=segment[:, 1].tolist(),
                                        mode="lines+markers+text", text=["a", "b"], textposition="top center",
                                        name="z_a → z_b", showlegend=False, line=dict(color="black")), row, 1)
            figure.add_trace(go.Scatter(x=[float(z_s[0])], y=[float(z_s[1])], mode="markers",
                                        name="z(s)", showlegend=False, marker=dict(size=14, color="red", symbol="x")),
                             row, 1)
            figure.add_trace(image_mosaic(torch.stack([ends[0], decoded[0].reshape(ends[0].shape), ends[1]]),
                                          name=name), row, 2)
            figure.update_xaxes(visible=False, row=row, col=2)
            figure.update_yaxes(visible=False, autorange="reversed", constrain="domain",
                                scaleanchor=figure.get_subplot(row, 2).xaxis.plotly_name.replace("axis", ""),
                                row=row, col=2)
        figure.update_layout(height=330 * len(models) + 60, width=980,
                             title=dict(text=f"Interpolation at s = {s:.2f}", font=dict(size=13)))
        return figure, summary

    controls = {"image_a": widgets.IntSlider(value=image_a, min=0, max=n - 1, description="image a"),
                "image_b": widgets.IntSlider(value=image_b, min=0, max=n - 1, description="image b"),
                "s": widgets.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="s")}
    return interactive_view(render, controls)


def restart_encodings(decoder: nn.Module, x: torch.Tensor, n_restarts: int = 16, radius: float = 2.0, seed: int = 0,
                      encoding: EncodeSettings = DEMO_ENCODING) -> EncodeResult:
    """Encode one image ``x`` (shape (1, ...)) from ``n_restarts`` starts z0 ~ U[-radius, radius]^d.

    The solves are recorded (``record=True``): ``result.trajectory.z[0]`` holds the starts.
    """
    x = one_target(x, "image")
    check_positive_int("n_restarts", n_restarts)
    check_positive("radius", radius)
    generator = torch.Generator().manual_seed(seed)
    z0 = (torch.rand(n_restarts, decoder.latent_dim, generator=generator, dtype=x.dtype) * 2 - 1) * radius
    with torch.no_grad():
        return encode(decoder, x.expand(n_restarts, *x.shape[1:]), z0=z0, record=True, **encoding.kwargs())


def distinct_endpoints(z: torch.Tensor, loss: torch.Tensor, tol: float) -> int:
    """How many groups the endpoints ``z`` (K, d) form when each joins the first lower-loss group
    centre (in order of ``loss``) within distance ``tol``, else starts a group."""
    check_non_negative("tol", tol)
    centres: list[torch.Tensor] = []
    for i in torch.argsort(loss).tolist():
        if not any(torch.dist(z[i], c) <= tol for c in centres):
            centres.append(z[i])
    return len(centres)


def restarts_view(decoder: nn.Module, images: torch.Tensor, n_restarts: int = 16, radius: float = 2.0,
                  resolution: int = 61, tol: float = 0.1, encoding: EncodeSettings = DEMO_ENCODING) -> InteractiveView:
    """Notebook view: one image encoded from many random z0 on its loss landscape.

    Controls: ``image``, ``radius`` of the z0 box, ``n_restarts`` and ``seed``. Left: the landscape
    with every path (z0 ○ → z* ★); middle: each z*'s loss against its distance from the best z*;
    right: what the z* decode to, best first. Summary: the loss range, the largest distance
    from the best z*, the largest mean per-pixel change of D(z*) from the best one's, and the
    number of distinct endpoints (within ``tol``).
    """
    images = check_tensor("images", images, min_dim=2)
    check_positive("tol", tol)

    def render(image, radius, n_restarts, seed):
        x = images[image:image + 1]
        result = restart_encodings(decoder, x, n_restarts, radius, seed, encoding)
        points = torch.cat([result.trajectory.z[0], result.z]).numpy()
        landscape = loss_landscape(decoder, x, latent_limits(points, margin=0.1), resolution)
        order = torch.argsort(result.loss)
        distance = (result.z - result.z[order[0]]).norm(dim=1).numpy()
        with torch.no_grad():
            decoded = torch.sigmoid(decoder(result.z[order])).reshape(-1, *x.shape[1:])
        figure = _restarts_figure(landscape, result, distance, torch.cat([x, decoded[:8]]))
        figure.update_layout(title=dict(text=f"Image {image} encoded from {n_restarts} random starts",
                                        font=dict(size=13)))
        change = (decoded - decoded[0]).flatten(1).abs().mean(1)  # per pixel, from the best z*'s picture
        summary = {"loss_min": float(result.loss.min()), "loss_max": float(result.loss.max()),
                   "max_distance": float(distance.max()), "max_picture_change": float(change.max()),
                   "distinct_endpoints": distinct_endpoints(result.z, result.loss, tol)}
        return figure, summary

    controls = {"image": widgets.IntSlider(value=0, min=0, max=images.shape[0] - 1, description="image"),
                "radius": widgets.FloatSlider(value=radius, min=0.25, max=8.0, step=0.25, description="z0 radius"),
                "n_restarts": widgets.IntSlider(value=n_restarts, min=2, max=64, description="restarts"),
                "seed": widgets.IntSlider(value=0, min=0, max=9, description="seed")}
    return interactive_view(render, controls)


def _restarts_figure(landscape, result: EncodeResult, distance: np.ndarray, shown: torch.Tensor) -> go.Figure:
    starts, ends = result.trajectory.z[0].numpy(), result.z.numpy()
    figure = make_subplots(rows=1, cols=3, column_widths=[0.42, 0.28, 0.30], horizontal_spacing=0.09,
                           subplot_titles=("paths z0 → z* on l(x, D(z)), dark: low", "loss at z* vs distance to the best",
                                           "target, then D(z*), best first"))
    figure.add_trace(landscape_heatmap(landscape).update(showscale=False), 1, 1)
    path = np.concatenate([np.vstack([sample_path(result, i)[1], [[np.nan, np.nan]]]) for i in range(len(ends))])
    figure.add_trace(go.Scatter(x=compact(path[:, 0]), y=compact(path[:, 1]), mode="lines", name="paths",
                                line=dict(color="white", width=1)), 1, 1)
    figure.add_trace(go.Scatter(x=compact(starts[:, 0]), y=compact(starts[:, 1]), mode="markers", name="z0",
                                marker=dict(size=8, symbol="circle-open", color="white")), 1, 1)
    figure.add_trace(go.Scatter(x=compact(ends[:, 0]), y=compact(ends[:, 1]), mode="markers", name="z*",
                                marker=dict(size=12, symbol="star", color="red")), 1, 1)
    figure.add_trace(go.Scatter(x=compact(distance), y=compact(result.loss.numpy()), mode="markers", name="restarts",
                                showlegend=False, marker=dict(size=8, color="red")), 1, 2)
    figure.add_trace(image_mosaic(shown, name="target, D(z*)", n_cols=3), 1, 3)
    figure.update_xaxes(title_text="z₁", row=1, col=1)
    figure.update_yaxes(title_text="z₂", scaleanchor="x", row=1, col=1)
    figure.update_xaxes(title_text="‖z* − best z*‖", row=1, col=2)
    figure.update_yaxes(title_text="loss", row=1, col=2)
    figure.update_xaxes(visible=False, row=1, col=3)
    figure.update_yaxes(visible=False, autorange="reversed", scaleanchor="x3", constrain="domain", row=1, col=3)
    figure.update_layout(height=460, width=980, legend=dict(orientation="h", y=-0.15, bgcolor="#c8c8c8"))
    return figure
