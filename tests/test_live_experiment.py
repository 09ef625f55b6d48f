"""The in-memory training comparison: checkpoints, snapshots, reconstructions and result rows."""

from __future__ import annotations

import pytest
import torch

from gfe_viz.data import ImageSplits
from gfe_viz.experiments.results_io import FIELDS
from gfe_viz.live_experiment import run_live_experiment
from gfe_viz.training import EncodeSettings

FAST = EncodeSettings(tau=20.0, z0="zeros")


def tiny_splits(seed: int = 0) -> ImageSplits:
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(80, 1, 4, 4, generator=g)
    labels = torch.randint(0, 3, (80,), generator=g)
    return ImageSplits(
        train=images[:60],
        train_labels=labels[:60],
        val=images[60:],
        val_labels=labels[60:],
        test=images[60:],
        test_labels=labels[60:],
        name="tiny",
    )


@pytest.fixture(scope="module")
def experiment():
    return run_live_experiment(
        methods=("ae", "gfe"),
        n_images=32,
        latent_dim=2,
        batch_size=8,
        n_checkpoints=3,
        n_val=12,
        encoding=FAST,
        splits=tiny_splits(),
    )


def test_checkpoints_are_log_spaced_whole_batches_up_to_the_images_streamed():
    run = run_live_experiment(
        methods=("ae",), n_images=70, latent_dim=2, batch_size=8, n_checkpoints=4, n_val=4, splits=tiny_splits()
    )
    assert run.checkpoints == [8, 24, 40, 72]  # 8 * 9 ** (k / 3), rounded up to whole batches
    history = run.runs["ae"].trainer.history
    assert history.images_seen == run.checkpoints and sorted(run.runs["ae"].snapshots) == run.checkpoints
    with pytest.raises(ValueError, match="n_images must be >= batch_size=8, got 4"):
        run_live_experiment(n_images=4, batch_size=8, splits=tiny_splits())
    with pytest.raises(ValueError, match="n_checkpoints must be a positive integer, got 0"):
        run_live_experiment(n_checkpoints=0, splits=tiny_splits())


def test_rows_have_the_results_columns_for_every_method_and_checkpoint(experiment):
    assert experiment.checkpoints == [8, 16, 32]
    rows = experiment.rows()
    assert [tuple(r) for r in rows] == [FIELDS] * 6
    assert [(r["method"], r["images_seen"]) for r in rows] == [(m, c) for m in ("ae", "gfe") for c in (8, 16, 32)]
    for row in rows:
        assert set(row) == set(FIELDS) and row["dataset"] == "tiny" and row["seed"] == 0
    assert all(r["encoder_nfe"] == 0 for r in rows if r["method"] == "ae")
    assert all(r["encoder_nfe"] > 0 for r in rows if r["method"] == "gfe")


def test_snapshots_hold_the_weights_of_each_checkpoint(experiment):
    for run in experiment.runs.values():
        assert sorted(run.snapshots) == experiment.checkpoints
        final = run.model_at(32).state_dict()
        for name, value in run.trainer.model.state_dict().items():
            assert torch.equal(final[name], value)
        early = run.model_at(8).state_dict()
        assert any(not torch.equal(early[name], final[name]) for name in final)
    with pytest.raises(ValueError, match=r"images_seen must be one of the checkpoints \[8, 16, 32\], got 9"):
        experiment.runs["gfe"].model_at(9)


@pytest.mark.parametrize("method", ["ae", "gfe"])
def test_reconstructions_score_as_the_validation_curve(experiment, method):
    run = experiment.runs[method]
    for k, images_seen in enumerate(experiment.checkpoints):
        images, losses = run.reconstruct(experiment.val_images, images_seen)
        assert images.shape == experiment.val_images.shape
        assert images.min() >= 0 and images.max() <= 1
        assert losses.double().mean().item() == pytest.approx(run.trainer.history.val_loss[k], rel=1e-5)


def test_methods_start_from_one_decoder_and_the_run_is_reproducible(experiment):
    again = run_live_experiment(
        methods=("gfe", "gfe_full"),
        n_images=8,
        latent_dim=2,
        batch_size=8,
        n_checkpoints=1,
        n_val=12,
        encoding=FAST,
        splits=tiny_splits(),
    )
    # gfe is the same run whichever methods accompany it
    assert again.runs["gfe"].trainer.history.val_loss[0] == experiment.runs["gfe"].trainer.history.val_loss[0]
    # one batch of approximate or full adjoint from the same decoder: close, not equal
    first, full = (again.runs[m].trainer.history.val_loss[0] for m in ("gfe", "gfe_full"))
    assert first == pytest.approx(full, rel=0.05) and first != full


@pytest.mark.parametrize(
    "methods, match",
    [(("ae", "ae"), "distinct"), ((), "non-empty"), ("gfe", "non-empty"), (("vae",), r"methods\[i\] must be one of")],
)
def test_bad_methods_are_refused(methods, match):
    with pytest.raises(ValueError, match=match):
        run_live_experiment(methods=methods, splits=tiny_splits())


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="latent_dim must be a positive integer, got 0"):
        run_live_experiment(latent_dim=0, splits=tiny_splits())
    with pytest.raises(ValueError, match="dataset must be one of"):
        run_live_experiment(dataset="cifar")


def test_the_weight_jitter_reaches_the_starting_decoder(monkeypatch):
    """``$GFE_DEMO_WEIGHT_JITTER`` (a testing aid) perturbs the run; without it the run is as before."""
    run = {}
    for jitter in ("", "1e-3"):
        monkeypatch.setenv("GFE_DEMO_WEIGHT_JITTER", jitter)
        run[jitter] = run_live_experiment(
            methods=("gfe",),
            n_images=8,
            latent_dim=2,
            batch_size=8,
            n_checkpoints=1,
            n_val=12,
            encoding=FAST,
            splits=tiny_splits(),
        )
    plain, jittered = (run[j].runs["gfe"].trainer.history.val_loss[0] for j in ("", "1e-3"))
    assert jittered == pytest.approx(plain, rel=1e-2) and jittered != plain
