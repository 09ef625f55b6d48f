"""The fast training preset and its pieces: the hand-written gradient, the preset's encoder, the
AMD attempt limit, and training that is validated with the paper's encoder."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gfe_viz import AMD_MNIST, TRAINING_FAST, TRAINING_PAPER, MLPDecoder, Status, encode
from gfe_viz.flows import GradientFlow
from gfe_viz.fused_gradient import fused_layers
from gfe_viz.training import EVAL_SEED, EncodeSettings, TrainConfig, Trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _mlp(latent_dim=4, out_dim=12, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    decoder = MLPDecoder(latent_dim, out_dim).to(dtype)
    with torch.no_grad():  # larger weights: pre-activations of both signs, so both ELU branches are hit
        for layer in decoder.net[0::2]:
            layer.weight.mul_(3.0)
    return decoder


# --- the hand-written loss and latent gradient -------------------------------------------------


@pytest.mark.parametrize("loss", ["bce", "mse"])
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_fused_gradient_equals_autograd(loss, dtype, tol):
    decoder = _mlp(dtype=dtype)
    g = torch.Generator().manual_seed(1)
    z = torch.randn(9, 4, generator=g).to(dtype)
    x = torch.rand(9, 12, generator=g).to(dtype)
    autograd = GradientFlow(decoder, loss=loss, gradient="autograd")
    fused = GradientFlow(decoder, loss=loss, gradient="fused")
    assert fused._fused is not None
    pre = decoder.net[0](z)
    assert (pre > 0).any() and (pre < 0).any(), "both ELU branches must be exercised"
    l_ref, g_ref = autograd.loss_and_grad(z, x)
    l_fused, g_fused = fused.loss_and_grad(z, x)
    torch.testing.assert_close(l_fused, l_ref, rtol=tol, atol=tol)
    torch.testing.assert_close(g_fused, g_ref, rtol=tol, atol=tol * g_ref.abs().max().item())


def test_fused_gradient_follows_weight_updates_and_image_shapes():
    decoder = MLPDecoder(3, 16, out_shape=(1, 4, 4)).double()
    flow = GradientFlow(decoder, gradient="fused")
    z, x = torch.rand(2, 3, dtype=torch.float64), torch.rand(2, 1, 4, 4, dtype=torch.float64)
    with torch.no_grad():
        decoder.net[-1].bias.add_(0.5)  # an optimiser step changes the weights in place
    torch.testing.assert_close(flow.loss_and_grad(z, x), GradientFlow(decoder).loss_and_grad(z, x))
    with pytest.raises(ValueError, match="does not match the data shape"):
        flow.loss_and_grad(z, torch.rand(2, 15, dtype=torch.float64))


def test_fused_gradient_applies_only_to_mlp_decoders_with_builtin_losses():
    other = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 4))
    assert fused_layers(other) is None and fused_layers(MLPDecoder(2, 4)) is not None
    with pytest.raises(ValueError, match="gradient='fused' needs an MLP decoder"):
        GradientFlow(other, gradient="fused")
    with pytest.raises(ValueError, match="gradient='fused' needs"):
        GradientFlow(MLPDecoder(2, 4), loss=lambda out, x: (out - x).abs().mean(1), gradient="fused")
    assert GradientFlow(other, gradient="auto")._fused is None  # auto falls back to autograd
    with pytest.raises(ValueError, match="gradient must be one of"):
        GradientFlow(other, gradient="numeric")


# --- the preset ----------------------------------------------------------------------------------


def test_presets_are_encode_keywords_without_the_problem():
    for preset in (TRAINING_FAST, TRAINING_PAPER):
        assert not {"z0", "loss", "tau", "x", "decoder"} & set(preset)
    assert TRAINING_PAPER["amd"] == AMD_MNIST and TRAINING_PAPER["acceptance"] == "per_sample"
    fast = TRAINING_FAST["amd"]
    # the decrease test per unit time is the paper's; the loss change per unit time that stops is smaller
    assert fast.sigma * fast.dt_max == pytest.approx(AMD_MNIST.sigma * AMD_MNIST.dt_max)
    assert fast.conv_tol / fast.dt_max < AMD_MNIST.conv_tol / AMD_MNIST.dt_max
    assert fast.dt_floor == pytest.approx(AMD_MNIST.dt_floor, rel=0.5)  # the same resolution where dt underflows


def test_fast_preset_reaches_the_least_squares_latent(linear_problem):
    decoder, x = linear_problem(d=3, P=6, B=4)
    z0 = torch.randn(4, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    expected = decoder.least_squares_latent(x).detach()
    fast = encode(decoder, x, loss="mse", z0=z0, tau=1e4, **TRAINING_FAST)
    paper = encode(decoder, x, loss="mse", z0=z0, tau=1e4, **TRAINING_PAPER)
    assert (fast.z - expected).abs().max() <= 1e-4
    assert fast.loss.max() <= paper.loss.max() + 1e-10
    assert fast.stats.nfe.max() < paper.stats.nfe.max()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fast_preset_never_raises_a_loss_on_an_accepted_step(dtype):
    decoder = _mlp(latent_dim=4, out_dim=12, dtype=dtype)
    g = torch.Generator().manual_seed(2)
    x = torch.rand(6, 12, generator=g).to(dtype)
    result = encode(decoder, x, z0="uniform", generator=g, tau=1e4, record=True, **TRAINING_FAST)
    paper = encode(decoder, x, z0=result.trajectory.z[0].to(dtype), tau=1e4, **TRAINING_PAPER)
    steps = result.steps
    previous = GradientFlow(decoder).loss(result.trajectory.z[0].to(dtype), x)
    for k in range(len(steps)):
        moved = steps.active[k] & steps.accepted[k]
        assert (steps.loss[k][moved] <= previous[moved]).all(), f"attempt {k} accepted a higher loss"
        previous = torch.where(moved, steps.loss[k], previous)
    # this steep decoder stalls at the loss's resolution: where the fast preset stops, the paper's rules arrive too
    finished = (result.status == int(Status.CONVERGED)) | (result.status == int(Status.STEP_UNDERFLOW))
    assert finished.all() and (result.status == int(Status.STEP_UNDERFLOW)).any()
    torch.testing.assert_close(result.loss, paper.loss, rtol=1e-5 if dtype == torch.float32 else 1e-9, atol=0)
    assert result.stats.nfe.sum() < paper.stats.nfe.sum()


def test_fast_preset_matches_the_autograd_solve_in_float64():
    torch.manual_seed(0)
    decoder = MLPDecoder(4, 12).double()
    g = torch.Generator().manual_seed(3)
    x = torch.rand(5, 12, generator=g, dtype=torch.float64)
    z0 = torch.rand(5, 4, generator=g, dtype=torch.float64)
    fused = encode(decoder, x, z0=z0, tau=1e4, **TRAINING_FAST)
    reference = encode(decoder, x, z0=z0, tau=1e4, **{**TRAINING_FAST, "gradient": "autograd"})
    torch.testing.assert_close(fused.z, reference.z, rtol=0, atol=1e-6)
    assert torch.equal(fused.stats.nfe, reference.stats.nfe)


# --- the AMD attempt limit ---------------------------------------------------------------------


@pytest.mark.parametrize("acceptance", ["per_sample", "batch"])
def test_attempt_limit_stops_a_huge_horizon_with_its_status(linear_problem, acceptance):
    decoder, x = linear_problem(B=3)
    result = encode(
        decoder, x, loss="mse", tau=1e12, acceptance=acceptance, amd=AMD_MNIST.replace(conv_tol=0.0), max_attempts=40
    )
    assert (result.status == int(Status.STEP_LIMIT)).all()
    assert (result.stats.nfe == 41).all()  # the first evaluation and 40 attempts
    assert (result.stats.t < 1e12).all()
    assert result.status_counts()["step_limit"] == 3


def test_attempt_limit_leaves_finished_samples_alone(linear_problem):
    decoder, x = linear_problem(B=3)
    plain = encode(decoder, x, loss="mse", tau=30.0, amd=AMD_MNIST)
    limited = encode(decoder, x, loss="mse", tau=30.0, amd=AMD_MNIST, max_attempts=int(plain.stats.nfe.max()))
    assert torch.equal(plain.z, limited.z) and torch.equal(plain.status, limited.status)
    with pytest.raises(ValueError, match="max_attempts must be a positive integer, got 0"):
        encode(decoder, x, loss="mse", max_attempts=0)


# --- training fast, validating with the paper's encoder -----------------------------------------


def test_fast_trainer_validates_with_the_paper_encoder(mnist_splits):
    train, val = mnist_splits.train[:64], mnist_splits.val[:8]
    paper = EncodeSettings(tau=100.0, **TRAINING_PAPER)
    fast = EncodeSettings(tau=100.0, **TRAINING_FAST)
    decoder = MLPDecoder(20, 784, (1, 28, 28))
    trainer = Trainer(decoder, train, val, TrainConfig(batch_size=16, encoding=fast, eval_encoding=paper), "cpu")
    loss, nfe = trainer.train_step()
    assert 0 < loss < 1 and nfe > 0

    def val_loss(settings):
        generator = torch.Generator().manual_seed(EVAL_SEED)
        result = encode(trainer.decoder, val, z0="uniform", tau=100.0, generator=generator, **settings)
        return result.loss.double().mean().item()

    expected = val_loss(TRAINING_PAPER)
    assert trainer.evaluate() == pytest.approx(expected, rel=1e-12)
    fast_eval = val_loss(TRAINING_FAST)
    assert fast_eval != pytest.approx(expected, rel=1e-9)  # the two encoders do differ on this decoder


@pytest.mark.parametrize("acceptance", ["per_sample", "batch"])
def test_stop_at_underflow_stops_where_the_forced_steps_would_start(linear_problem, acceptance):
    # the least-squares latent is reached long before the convergence test starts at 0.02 tau; from
    # then on no step lowers the float64 loss enough, and the paper's rules force one step after another
    decoder, x = linear_problem(d=3, P=6, B=4)
    z0 = torch.zeros(4, 3, dtype=torch.float64)
    paper = encode(decoder, x, loss="mse", z0=z0, tau=1e4, acceptance=acceptance, amd=AMD_MNIST, record=True)
    stop = encode(
        decoder,
        x,
        loss="mse",
        z0=z0,
        tau=1e4,
        acceptance=acceptance,
        amd=AMD_MNIST.replace(stop_at_underflow=True),
        record=True,
    )
    assert (paper.stats.forced > 0).all() and (stop.stats.forced == 0).all()
    assert (stop.status == int(Status.STEP_UNDERFLOW)).all()
    # the same path up to the stop: every attempt of the stopped solve is an attempt of the paper's
    n, active = len(stop.steps), stop.steps.active
    assert torch.equal(stop.steps.dt[active], paper.steps.dt[:n][active])
    assert torch.equal(stop.steps.accepted[active], paper.steps.accepted[:n][active])
    torch.testing.assert_close(stop.z, decoder.least_squares_latent(x).detach(), rtol=0, atol=1e-6)
    assert stop.stats.nfe.max() < paper.stats.nfe.max() / 3
