"""Loss landscapes of 2-D latents, their boxes, and the paths and images of a recorded encode."""

import numpy as np
import pytest
import torch

from gfe_viz import AMD, AMD_MNIST, Euler, encode
from gfe_viz.analysis.landscapes import (
    covering_limits,
    decoded_images,
    encoded_limits,
    flow_path,
    latent_limits,
    loss_landscape,
    path_losses,
    sample_path,
)
from gfe_viz.models import MLPDecoder


def test_landscape_is_the_loss_on_the_grid(linear):
    decoder, x = linear
    land = loss_landscape(decoder, x, (-2.0, 2.0, -1.0, 3.0), resolution=41, loss="mse")
    assert land.loss.shape == (41, 41) and land.z1[0] == -2.0 and land.z2[-1] == 3.0
    j, i = 7, 30  # loss[j, i] is at (z1[i], z2[j])
    z = torch.tensor([land.z1[i], land.z2[j]], dtype=torch.float64)
    with torch.no_grad():
        expected = ((decoder.weight @ z + decoder.bias - x[0]) ** 2).mean()
    assert land.loss[j, i] == pytest.approx(float(expected), rel=1e-12)
    exact = decoder.least_squares_latent(x)[0].detach().numpy()
    spacing = land.z1[1] - land.z1[0]
    assert np.abs(land.argmin() - exact).max() <= spacing / 2 + 1e-12


def test_landscape_rejects_bad_input(linear, tiny):
    decoder, x = linear
    with pytest.raises(ValueError, match=r"x must hold one target, shape \(1, ...\), got \(2, 3\)"):
        loss_landscape(decoder, x.repeat(2, 1), (-1, 1, -1, 1))
    with pytest.raises(ValueError, match="limits must be .* got \\(1, -1, -1, 1\\)"):
        loss_landscape(decoder, x, (1, -1, -1, 1))
    with pytest.raises(ValueError, match="resolution must be a positive integer, got 0"):
        loss_landscape(decoder, x, (-1, 1, -1, 1), resolution=0)
    with pytest.raises(ValueError, match="2-D latent .* latent_dim=3"):
        loss_landscape(MLPDecoder(3, 16), torch.rand(1, 16), (-1, 1, -1, 1))


def test_latent_limits_is_a_padded_square_around_the_points():
    points = np.array([[0.0, 0.0], [2.0, 1.0], [1.0, -1.0]])
    z1_min, z1_max, z2_min, z2_max = latent_limits(points, margin=0.5)
    assert z1_max - z1_min == pytest.approx(4.0) and z2_max - z2_min == pytest.approx(4.0)
    assert (z1_min + z1_max) / 2 == pytest.approx(1.0) and (z2_min + z2_max) / 2 == pytest.approx(0.0)
    with pytest.raises(ValueError, match=r"points must have shape \(N, 2\)"):
        latent_limits(np.zeros((3, 3)))


def test_sample_path_runs_from_z0_to_the_result(tiny):
    decoder, images = tiny
    z0 = torch.tensor([[0.3, -0.2]] * 3)
    result = encode(decoder, images, tau=50.0, z0=z0, record=True)
    t, path = sample_path(result, 1)
    assert np.allclose(path[0], [0.3, -0.2]) and np.allclose(path[-1], result.z[1].numpy())
    assert t[0] == 0 and np.all(np.diff(t) > 0) and len(t) == int(result.stats.accepted[1]) + 1
    with pytest.raises(ValueError, match="record=True"):
        sample_path(encode(decoder, images, tau=5.0))
    with pytest.raises(ValueError, match=r"sample must be in \[0, 3\), got 3"):
        sample_path(result, 3)


def test_decoded_images_are_sigmoid_of_the_logits_for_bce(tiny):
    decoder, _ = tiny
    z = torch.tensor([[0.5, -1.0]])
    images = decoded_images(decoder, z)
    assert images.shape == (1, 4, 4)
    assert np.allclose(images[0], torch.sigmoid(decoder(z))[0, 0].detach().numpy())
    assert np.allclose(decoded_images(decoder, z, loss="mse")[0], decoder(z)[0, 0].detach().numpy())


def test_covering_limits_keep_a_box_that_holds_the_points_and_grow_it_about_its_centre_otherwise():
    box = (-1.0, 1.0, 0.0, 4.0)
    assert covering_limits(box, np.array([[0.5, 3.9], [-1.0, 0.0]])) == box
    grown = covering_limits(box, np.array([[1.2, 2.0]]), growth=1.5)  # 1.2 times the half side: one growth
    assert grown == pytest.approx((-1.5, 1.5, -1.0, 5.0))
    twice = covering_limits(box, np.array([[0.0, 2.0 + 2 * 1.6]]), growth=1.5)  # 1.6 half sides: 1.5² = 2.25
    assert twice == pytest.approx((-2.25, 2.25, 2.0 - 4.5, 2.0 + 4.5))
    with pytest.raises(ValueError, match="growth must be a number > 1, got 1"):
        covering_limits(box, np.zeros((1, 2)), growth=1)
    with pytest.raises(ValueError, match=r"points must have shape \(N, 2\)"):
        covering_limits(box, np.zeros((1, 3)))


def test_encoded_limits_hold_the_origin_and_every_z_star(tiny):
    decoder, images = tiny
    limits = encoded_limits(decoder, images, AMD(AMD_MNIST), tau=50.0, margin=0.4)
    z = encode(decoder, images, tau=50.0).z.numpy()
    assert limits == pytest.approx(latent_limits(np.concatenate([z, np.zeros((1, 2))]), margin=0.4))


def test_flow_path_is_the_recorded_encode_of_one_target_from_z0(tiny):
    decoder, images = tiny
    run = flow_path(decoder, images[1:2], Euler(dt=2.0), (0.3, -0.2), tau=20.0)
    result = encode(decoder, images[1:2], solver=Euler(dt=2.0), z0=torch.tensor([[0.3, -0.2]]), tau=20.0, record=True)
    t, path = sample_path(result)
    assert np.allclose(run.t, t) and np.allclose(run.path, path, atol=1e-6)
    assert np.allclose(run.loss, path_losses(decoder, images[1:2], run.path), atol=1e-6)
    assert run.summary["nfe"] == 11 and run.summary["status"] == "reached_tau"
    assert (run.summary["z*_1"], run.summary["z*_2"]) == pytest.approx(tuple(run.path[-1]), abs=1e-6)
    with pytest.raises(ValueError, match=r"x must hold one target, shape \(1, ...\), got \(3, 1, 4, 4\)"):
        flow_path(decoder, images, Euler(dt=2.0), (0.0, 0.0), tau=20.0)
