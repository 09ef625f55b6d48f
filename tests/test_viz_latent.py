"""The latent-space lesson: codes, the class scatter, interpolation and random restarts."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from gfe_viz import Autoencoder, MLPDecoder, encode
from gfe_viz.analysis.landscapes import latent_limits, loss_landscape
from gfe_viz.analysis.latent_metrics import (
    decoder_of,
    distinct_endpoints,
    latent_codes,
    neighbour_accuracy,
    restart_encodings,
)
from gfe_viz.flows import GradientFlow
from gfe_viz.training import EncodeSettings
from gfe_viz.viz.interactive import _as_json
from gfe_viz.viz.landscape import landscape_heatmap
from gfe_viz.viz.latent import interpolation_view, landscape_box, latent_scatter_figure, restarts_view

FAST = EncodeSettings(tau=30.0, z0="zeros")


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    decoder = MLPDecoder(2, 16, (1, 4, 4))
    with torch.no_grad():
        decoder.net[-1].weight.mul_(10.0)
    return {"GFE": decoder, "AE": Autoencoder(2, 16, (1, 4, 4))}


@pytest.fixture(scope="module")
def images():
    return torch.rand(10, 1, 4, 4, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def codes(models, images):
    return {name: latent_codes(model, images, FAST) for name, model in models.items()}


def test_codes_come_from_the_encoder_or_the_flow(models, images, codes):
    assert torch.equal(codes["AE"], models["AE"].encode(images).detach())
    assert torch.equal(codes["GFE"], encode(models["GFE"], images, z0="zeros", **FAST.kwargs()).z)
    assert decoder_of(models["AE"]) is models["AE"].decoder and decoder_of(models["GFE"]) is models["GFE"]


def test_scatter_has_one_trace_per_class_and_panel(codes):
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 2])
    figure = latent_scatter_figure(codes, labels, class_names=["zero", "one", "two"])
    assert [t.name for t in figure.data] == ["zero", "one", "two"] * 2
    assert [t.showlegend for t in figure.data] == [True] * 3 + [False] * 3
    two_ae = figure.data[5]
    assert two_ae.xaxis == "x2"
    assert np.allclose(two_ae.x, codes["AE"][labels == 2, 0].numpy(), rtol=1e-3, atol=1e-6)
    assert figure.data[0].marker.color != figure.data[1].marker.color
    with pytest.raises(ValueError, match=r"codes\['GFE'\] must have shape \(3, 2\) like labels"):
        latent_scatter_figure(codes, labels[:3])


def test_neighbour_accuracy_counts_codes_among_their_own_class():
    g = torch.Generator().manual_seed(0)
    clusters = torch.cat([torch.randn(10, 2, generator=g) * 0.1, torch.randn(10, 2, generator=g) * 0.1 + 5])
    labels = torch.tensor([0] * 10 + [1] * 10)
    assert neighbour_accuracy(clusters, labels, k=5) == 1.0
    line = torch.arange(10.0)[:, None] * torch.tensor([[1.0, 0.0]])
    alternating = torch.arange(10) % 2
    assert neighbour_accuracy(line, alternating, k=1) == 0.0  # every nearest neighbour has the other label
    mixed = torch.tensor([0] * 5 + [1] * 5)
    assert neighbour_accuracy(torch.cat([line[:5], line[5:] + 10]), mixed, k=1) == 1.0
    assert neighbour_accuracy(line, torch.tensor([0, 1, 1, 1, 1, 1, 1, 1, 1, 1]), k=3) == 0.9  # 0 is outvoted
    with pytest.raises(ValueError, match="N > k=10"):
        neighbour_accuracy(line, mixed, k=10)
    with pytest.raises(ValueError, match="k must be a positive integer, got 0"):
        neighbour_accuracy(line, mixed, k=0)


def test_interpolation_decodes_the_point_between_the_codes(models, images, codes):
    view = interpolation_view(models, images, codes, image_a=2, image_b=7)
    assert set(view.controls) == {"image_a", "image_b", "s"}
    for s, end, key in ((0.0, 2, "loss_a"), (1.0, 7, "loss_b")):  # at the ends z(s) is that image's code
        view.update(s=s)
        for k, (name, model) in enumerate(models.items()):
            with torch.no_grad():
                expected = GradientFlow(decoder_of(model)).loss(codes[name][end][None], images[[end]]).item()
            assert view.summary[f"{name}_{key}"] == pytest.approx(expected, rel=1e-6)
            point = [t for t in view.figure.data if t.name == "z(s)"][k]
            assert np.allclose([point.x[0], point.y[0]], codes[name][end].numpy(), rtol=1e-4, atol=1e-6)
    view.update(s=0.5, image_b=3)
    middle = (codes["AE"][2] + codes["AE"][3]) / 2
    ae_point = [t for t in view.figure.data if t.name == "z(s)"][1]
    assert np.allclose([ae_point.x[0], ae_point.y[0]], middle.numpy(), rtol=1e-4)
    decoded = [t for t in view.figure.data if isinstance(t, go.Heatmap) and t.name == "AE"][0]
    with torch.no_grad():
        expected = torch.sigmoid(models["AE"].decoder(middle[None]))[0, 0].numpy()
    assert np.allclose(np.array(decoded.z, dtype=float)[:, 5:9], expected, atol=0.006)


def test_interpolation_checks_its_arguments(models, images, codes):
    with pytest.raises(ValueError, match=r"image_b must be an index in \[0, 10\), got 10"):
        interpolation_view(models, images, codes, image_b=10)
    with pytest.raises(ValueError, match="models and codes must name the same models"):
        interpolation_view(models, images, {"GFE": codes["GFE"]})


def test_restarts_start_in_the_box_and_encode_the_same_image(models, images):
    result = restart_encodings(models["GFE"], images[:1], n_restarts=6, radius=1.5, seed=2, encoding=FAST)
    starts = result.trajectory.z[0]
    assert starts.shape == (6, 2) and starts.abs().max() <= 1.5 and starts.std() > 0.1
    again = encode(models["GFE"], images[:1].expand(6, 1, 4, 4), z0=starts, **FAST.kwargs())
    assert torch.equal(result.z, again.z)
    other_seed = restart_encodings(models["GFE"], images[:1], n_restarts=6, radius=1.5, seed=3, encoding=FAST)
    assert not torch.equal(other_seed.trajectory.z[0], starts)
    with pytest.raises(ValueError, match="x must hold one image"):
        restart_encodings(models["GFE"], images[:2])
    with pytest.raises(ValueError, match="radius must be a finite number > 0, got -1"):
        restart_encodings(models["GFE"], images[:1], radius=-1)


def test_distinct_endpoints_groups_nearby_points():
    z = torch.tensor([[0.0, 0.0], [0.05, 0.0], [1.0, 1.0], [1.0, 1.04], [3.0, 0.0]])
    loss = torch.tensor([0.1, 0.2, 0.3, 0.05, 0.4])
    assert distinct_endpoints(z, loss, tol=0.1) == 3
    assert distinct_endpoints(z, loss, tol=0.0) == 5
    assert distinct_endpoints(z, loss, tol=10.0) == 1


def test_restarts_view_redraws_for_new_settings(models, images):
    view = restarts_view(models["GFE"], images, n_restarts=5, radius=1.0, resolution=11, encoding=FAST)
    assert set(view.controls) == {"image", "radius", "n_restarts", "seed"}
    assert isinstance(view.figure.data[0], go.Heatmap) and np.array(view.figure.data[0].z).shape == (11, 11)
    ends = [t for t in view.figure.data if t.name == "z*"][0]
    assert len(ends.x) == 5
    summary = view.summary
    assert summary["loss_min"] <= summary["loss_max"] and 1 <= summary["distinct_endpoints"] <= 5
    result = restart_encodings(models["GFE"], images[:1], n_restarts=5, radius=1.0, encoding=FAST)
    with torch.no_grad():
        pictures = torch.sigmoid(models["GFE"](result.z)).flatten(1)
    best = pictures[result.loss.argmin()]
    assert summary["max_picture_change"] == pytest.approx((pictures - best).abs().mean(1).max().item(), rel=1e-5)

    view.update(n_restarts=9, image=4)
    ends = [t for t in view.figure.data if t.name == "z*"][0]
    result = restart_encodings(models["GFE"], images[4:5], n_restarts=9, radius=1.0, encoding=FAST)
    assert np.allclose(ends.x, result.z[:, 0].numpy(), rtol=1e-3, atol=1e-6)
    assert view.summary["loss_min"] == pytest.approx(result.loss.min().item())
    target = [t for t in view.figure.data if isinstance(t, go.Heatmap)][1]
    assert np.allclose(np.array(target.z, dtype=float)[:4, :4], images[4, 0].numpy(), atol=0.006)


def test_landscape_box_holds_the_starts_ends_and_z0_box():
    g = np.random.default_rng(0)
    for _ in range(200):
        radius = float(g.uniform(0.25, 8.0))
        points = g.normal(size=(int(g.integers(1, 20)), 2)) * g.uniform(0.1, 10.0) + g.normal(size=2) * 3
        low1, high1, low2, high2 = latent_limits(
            np.vstack([points, [[-radius, -radius], [radius, radius]]]), margin=0.1
        )
        box = landscape_box(points, radius)
        assert box[0] <= low1 and box[1] >= high1 and box[2] <= low2 and box[3] >= high2
        assert box[1] - box[0] == pytest.approx(box[3] - box[2])  # square
        assert box[1] - box[0] <= 2**0.25 * 17 / 16 * (high1 - low1) + 1e-9  # at most about a quarter wider
    inside = np.array([[0.3, -0.2], [-1.0, 0.9]])
    assert landscape_box(inside, 2.0) == landscape_box(inside * 0.5, 2.0)  # ends inside the z0 box: the z0 box decides


def test_restarts_view_computes_each_landscape_once(models, images, monkeypatch):
    calls = {"solves": 0, "landscapes": 0}
    import gfe_viz.viz.latent as latent

    def counted(name, function):
        def call(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)

        return call

    monkeypatch.setattr(latent, "restart_encodings", counted("solves", latent.restart_encodings))
    monkeypatch.setattr(latent, "loss_landscape", counted("landscapes", latent.loss_landscape))
    view = restarts_view(models["GFE"], images, n_restarts=5, radius=8.0, resolution=11, encoding=FAST)
    for seed in (1, 2, 3):
        view.update(seed=seed)
        result = restart_encodings(models["GFE"], images[:1], n_restarts=5, radius=8.0, seed=seed, encoding=FAST)
        assert result.z.abs().max() < 8.0  # the ends stay in the z0 box: the box is that of radius 8 alone
    assert calls == {"solves": 4, "landscapes": 1}
    drawn = view.figure.data[0]
    points = torch.cat([result.trajectory.z[0], result.z]).numpy()
    fresh = loss_landscape(models["GFE"], images[:1], landscape_box(points, 8.0), 11)
    assert _as_json(drawn.to_plotly_json()) == _as_json(
        landscape_heatmap(fresh).update(showscale=False, xaxis="x", yaxis="y").to_plotly_json()
    )
    view.update(image=3)
    assert calls == {"solves": 5, "landscapes": 2}
