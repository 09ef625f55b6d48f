"""Training: every method learns on a tiny MNIST subset, resuming is exact, bad configurations fail early."""

from __future__ import annotations

import io
import math
import re

import pytest
import torch
from tqdm import tqdm

from gfe_viz import AMD_MNIST, Autoencoder, MLPDecoder
from gfe_viz.models import initial_model
from gfe_viz.training import (
    MAX_SEED,
    METHODS,
    EncodeSettings,
    History,
    TrainConfig,
    Trainer,
    TrainingDiverged,
    _format_left,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST_ENCODING = EncodeSettings(tau=20.0, z0="zeros", amd=AMD_MNIST)


@pytest.fixture(scope="module")
def tiny_images(mnist_splits):
    return mnist_splits.train[:48].clone(), mnist_splits.val[:16].clone()


def make_trainer(method: str, train, val, seed: int = 0, **config) -> Trainer:
    model = initial_model(method, 2, (1, 28, 28), seed)
    config.setdefault("batch_size", 8)
    config.setdefault("encoding", FAST_ENCODING)
    return Trainer(model, train, val, TrainConfig(method=method, **config), device="cpu")


@pytest.mark.parametrize("method", METHODS)
def test_each_method_lowers_the_loss(tiny_images, method):
    train, val = tiny_images
    images = 64 if method == "gfe_full" else 128
    trainer = make_trainer(method, train, val)
    before = trainer.evaluate(train)
    history = trainer.run(images, checkpoints=[images // 2, images], progress=False)
    after = trainer.evaluate(train)
    assert after < before - 0.1, f"{method}: training loss on the subset went from {before:.4f} to {after:.4f}"
    assert history.images_seen == [images // 2, images]
    assert history.val_loss[-1] < history.val_loss[0] + 0.05 and all(map(math.isfinite, history.val_loss))
    assert history.train_loss[-1] < history.train_loss[0]
    assert all(t > 0 for t in history.wall_time) and history.wall_time[1] >= history.wall_time[0]
    if method == "ae":
        assert history.encoder_nfe == [0.0, 0.0]
    else:
        assert all(nfe > 1 for nfe in history.encoder_nfe)
    assert len(history.rows()) == 2 and set(history.rows()[0]) == {
        "images_seen",
        "train_loss",
        "val_loss",
        "wall_time",
        "encoder_nfe",
    }


def _comparable(history: History) -> dict:
    return {k: v for k, v in vars(history).items() if k != "wall_time"}


@pytest.mark.parametrize("method", METHODS)
def test_resume_from_state_dict_reproduces_the_uninterrupted_run(tiny_images, method):
    train, val = tiny_images
    checkpoints = [16, 40, 56]
    straight = make_trainer(method, train, val)
    straight.run(56, checkpoints=checkpoints, progress=False)

    first = make_trainer(method, train, val)
    first.run(24, checkpoints=checkpoints, progress=False)  # stops between two checkpoints
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    resumed = make_trainer(method, train, val, seed=123)  # different initial weights, then restored
    resumed.load_state_dict(torch.load(buffer, weights_only=True))  # a state holds nothing that needs code to load
    resumed.run(56, checkpoints=checkpoints, progress=False)

    assert _comparable(resumed.history) == _comparable(straight.history)
    assert resumed.images_seen == straight.images_seen == 56
    for a, b in zip(resumed.model.parameters(), straight.model.parameters()):
        assert torch.equal(a, b)


def test_same_seed_gives_the_same_run(tiny_images):
    train, val = tiny_images
    a = make_trainer("gfe", train, val)
    b = make_trainer("gfe", train, val)
    assert _comparable(a.run(32, checkpoints=[32], progress=False)) == _comparable(
        b.run(32, checkpoints=[32], progress=False)
    )


def test_gfe_and_ae_start_from_the_same_decoder_and_stream(tiny_images):
    train, val = tiny_images
    gfe = make_trainer("gfe", train, val)
    ae = make_trainer("ae", train, val)
    for a, b in zip(gfe.decoder.parameters(), ae.decoder.parameters()):
        assert torch.equal(a, b)
    opt = gfe.optimizer.param_groups[0]
    assert (opt["lr"], opt["alpha"], opt["eps"]) == (5e-4, 0.9, 1e-6)
    assert isinstance(gfe.optimizer, torch.optim.RMSprop)


BAD_CONFIGS = [
    (dict(method="vae"), "method"),
    (dict(batch_size=0), "batch_size"),
    (dict(batch_size=2.5), "batch_size"),
    (dict(eval_batch_size=-1), "eval_batch_size"),
    (dict(lr=0.0), "lr"),
    (dict(lr=-1e-3), "lr"),
    (dict(rms_alpha=-0.5), "rms_alpha"),
    (dict(eps=-1.0), "eps"),
    (dict(loss="l1"), "loss"),
    (dict(method="gfe_full", encoding=EncodeSettings(order=2, tau=20.0)), "order"),
    (dict(encoding=EncodeSettings(solver="adams", tau=20.0)), "solver"),
    (dict(encoding=EncodeSettings(tau=-1.0)), "tau"),
    (dict(encoding=EncodeSettings(acceptance="global", tau=20.0)), "acceptance"),
]


@pytest.mark.parametrize("config, name", BAD_CONFIGS, ids=[f"{n}-{i}" for i, (_, n) in enumerate(BAD_CONFIGS)])
def test_bad_config_is_rejected_with_its_name(tiny_images, config, name):
    train, val = tiny_images
    with pytest.raises((ValueError, TypeError)) as info:
        trainer = make_trainer(
            config.get("method", "gfe"), train, val, **{k: v for k, v in config.items() if k != "method"}
        )
        trainer.train_step()  # a setting that is only checked when used must fail on the first step
    assert name in str(info.value)


@pytest.mark.parametrize("seed", [MAX_SEED + 1, -1, 2**70, True])
def test_a_seed_outside_the_range_is_refused(seed):
    with pytest.raises(ValueError, match=re.escape(f"seed must be an integer in [0, {MAX_SEED}], got {seed!r}")):
        TrainConfig(seed=seed)


def test_bad_trainer_arguments(tiny_images):
    train, val = tiny_images
    with pytest.raises(TypeError, match="Autoencoder"):
        Trainer(MLPDecoder(2, 784, (1, 28, 28)), train, val, TrainConfig(method="ae"), device="cpu")
    with pytest.raises(TypeError, match="Autoencoder"):
        Trainer(Autoencoder(2, 784, (1, 28, 28)), train, val, TrainConfig(method="gfe"), device="cpu")
    bad = train.clone()
    bad[3, 0, 5, 5] = float("nan")
    with pytest.raises(ValueError, match="train_images"):
        Trainer(MLPDecoder(2, 784, (1, 28, 28)), bad, val, TrainConfig(), device="cpu")
    with pytest.raises(ValueError, match=r"train_images must lie in \[0, 1\] for loss 'bce'.* got values in \[0, 2\]"):
        Trainer(Autoencoder(2, 784, (1, 28, 28)), train * 2, val, TrainConfig(method="ae"), device="cpu")
    with pytest.raises(ValueError, match=r"val_images must lie in \[0, 1\].*\[-1, 0\]"):
        Trainer(MLPDecoder(2, 784, (1, 28, 28)), train, -val, TrainConfig(), device="cpu")
    with pytest.raises(ValueError, match="device"):
        Trainer(MLPDecoder(2, 784, (1, 28, 28)), train, val, TrainConfig(), device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            Trainer(MLPDecoder(2, 784, (1, 28, 28)), train, val, TrainConfig(), device="cuda")
    trainer = make_trainer("ae", train, None)
    with pytest.raises(ValueError, match="images"):
        trainer.run(0, progress=False)
    with pytest.raises(ValueError, match="images"):
        trainer.evaluate()


def test_device_is_cuda_when_present_else_cpu_and_overridable():
    from gfe_viz.device import resolve_device

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected and resolve_device(None).type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


def test_run_checkpoints_once_per_step_and_reports_every_step(tiny_images):
    # batch 8: the first step passes both 3 and 5, which must give one checkpoint, not a crash or two
    train, val = tiny_images
    trainer = make_trainer("ae", train, val)
    seen, saved = [], []
    trainer.run(
        24,
        checkpoints=[3, 5, 16, 24],
        progress=False,
        on_checkpoint=lambda t: saved.append(t.images_seen),
        on_step=lambda t, checkpointed: seen.append((t.images_seen, checkpointed)),
    )
    assert trainer.history.images_seen == saved == [8, 16, 24]
    assert seen == [(8, True), (16, True), (24, True)]
    trainer.run(
        40, checkpoints=[32], progress=False, on_step=lambda t, checkpointed: seen.append((t.images_seen, checkpointed))
    )
    assert seen[3:] == [(32, True), (40, False)] and trainer.history.images_seen == [8, 16, 24, 32]


# --- a diverging run stops instead of grinding on -------------------------------------------------------


@pytest.mark.parametrize("method", ["gfe", "ae"])
def test_a_diverging_run_stops_with_a_clear_message(tiny_images, method):
    train, val = tiny_images
    trainer = make_trainer(method, train, val, lr=1000.0)
    with pytest.raises(
        TrainingDiverged,
        match=r"diverged at \d+ images: the training loss (is nan|rose to .* over "
        r"100 times its first value).*lower the learning rate \(lr=1000\)",
    ):
        trainer.run(400, checkpoints=[400], progress=False)
    assert trainer.images_seen <= 40, "it stops within a few batches of diverging"
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters()), "the diverging step is not applied"


def test_an_encoder_failing_every_sample_stops_the_run(tiny_images):
    train, val = tiny_images  # one AMD attempt per encode: every sample ends as step_limit, far from tau
    encoding = EncodeSettings(tau=20.0, z0="zeros", amd=AMD_MNIST.replace(max_attempts=1))
    trainer = make_trainer("gfe", train, val, encoding=encoding)
    with pytest.raises(
        TrainingDiverged,
        match="the encoder failed for every sample of 3 batches in a row "
        r"\(last batch: step_limit 8\)",
    ):
        trainer.run(400, progress=False)
    assert trainer.images_seen == 16, "two failing batches are tolerated, the third stops it before its update"


def test_the_divergence_watch_resumes_with_the_state(tiny_images):
    train, val = tiny_images
    encoding = EncodeSettings(tau=20.0, z0="zeros", amd=AMD_MNIST.replace(max_attempts=1))
    first = make_trainer("gfe", train, val, encoding=encoding)
    first.run(16, progress=False)
    resumed = make_trainer("gfe", train, val, encoding=encoding)
    resumed.load_state_dict(first.state_dict())
    with pytest.raises(TrainingDiverged):
        resumed.train_step()  # the third failing batch in a row, counting the two before the save


def test_time_left_counts_the_evaluations_still_to_come(tiny_images):
    train, val = tiny_images
    trainer = make_trainer("ae", train, val)
    trainer.images_seen, trainer.train_time = 30, 7.0  # 20 images in 5 s of training since (10, 2.0)
    assert trainer._time_left(110, (10, 2.0), 0, []) == pytest.approx((80 * 0.25, True))
    assert trainer._time_left(110, (10, 2.0), 3, [4.0, 6.0]) == pytest.approx((80 * 0.25 + 3 * 5.0, True))
    # a run resumed between checkpoints has timed no evaluation yet: the training time, as a lower bound
    assert trainer._time_left(110, (10, 2.0), 3, []) == pytest.approx((80 * 0.25, False))
    assert trainer._time_left(110, (30, 7.0), 0, []) is None, "unknown until this run trained an image"
    fmt = tqdm.format_interval
    assert [_format_left(x, fmt) for x in (None, (3723.0, True), (3723.0, False))] == ["?", "1:02:03", ">1:02:03"]
