"""The data-efficiency lesson's sources, curves and reconstruction view."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from test_live_experiment import FAST, tiny_splits

from gfe_viz.analysis.results import (
    CurveSource,
    Reconstructions,
    committed_results,
    curve_source,
    lesson_reconstructions,
    live_reconstructions,
    stored_reconstructions,
)
from gfe_viz.experiments import DataEfficiencySettings, run_data_efficiency
from gfe_viz.experiments.results_io import write_rows
from gfe_viz.live_experiment import run_live_experiment
from gfe_viz.viz.efficiency import loss_curves_figure, reconstruction_view


@pytest.fixture(scope="module")
def experiment():
    return run_live_experiment(
        methods=("ae", "gfe"),
        n_images=24,
        latent_dim=2,
        batch_size=8,
        n_checkpoints=3,
        n_val=10,
        encoding=FAST,
        splits=tiny_splits(),
    )


def rows_for(dataset: str, methods=("ae", "gfe"), seeds=(0,), images=(10, 100)) -> list[dict]:
    return [
        {
            "dataset": dataset,
            "method": m,
            "seed": s,
            "images_seen": n,
            "val_loss": 0.5 / n + 0.1 * s + 0.01 * k,
            "train_loss": 0.3,
            "wall_time": n * (k + 1) / 10 + s,
            "encoder_nfe": 0.0,
        }
        for k, m in enumerate(methods)
        for s in seeds
        for n in images
    ]


def write_run(
    folder, rows, command="gfe-viz data-efficiency --images 100", completed=True, settings=None, paused_at=None
):
    folder.mkdir(parents=True)
    write_rows(folder / "results.csv", rows)
    run = {
        "settings": settings or {},
        "invocations": [{"command": command}],
        "completed": "2026" if completed else None,
    }
    if paused_at is not None:
        run["paused_at"] = {"images": paused_at, "time": "2026"}
    (folder / "run.json").write_text(json.dumps(run))


def test_committed_results_take_each_dataset_from_its_longest_finished_run(tmp_path):
    assert committed_results(tmp_path) is None
    write_run(tmp_path / "short", rows_for("mnist") + rows_for("fashionmnist", images=(10, 50, 1000)))
    write_run(tmp_path / "long", rows_for("mnist", images=(10, 100, 1000)), command="gfe-viz data-efficiency --long")
    write_run(tmp_path / "running", rows_for("mnist", images=(10, 10_000)), completed=False)
    source = committed_results(tmp_path)
    assert not source.live
    mnist = {r["images_seen"] for r in source.rows if r["dataset"] == "mnist"}
    fashion = {r["images_seen"] for r in source.rows if r["dataset"] == "fashionmnist"}
    assert mnist == {10, 100, 1000} and fashion == {10, 50, 1000}
    assert len(source.rows) == 12
    assert "--long" in source.description and str(tmp_path / "short") in source.description
    assert "running" not in source.description
    assert committed_results(tmp_path / "running") is None


def test_a_run_stopped_by_stop_at_counts_as_finished_to_that_point(tmp_path):
    write_run(tmp_path / "full", rows_for("mnist", images=(10, 100, 1000)))
    write_run(
        tmp_path / "part",
        rows_for("mnist", methods=("gfe",), images=(10, 100, 5000)),
        completed=False,
        paused_at=5000,
        command="gfe-viz data-efficiency --images 100000 --stop-at 5000",
    )
    source = committed_results(tmp_path)
    gfe = {r["images_seen"] for r in source.rows if r["method"] == "gfe"}
    assert gfe == {10, 100, 5000} and source.folders["mnist", "gfe"] == tmp_path / "part"
    assert source.folders["mnist", "ae"] == tmp_path / "full" and "--stop-at 5000" in source.description


def test_curve_source_falls_back_on_the_live_run(tmp_path, experiment):
    source = curve_source(tmp_path / "absent", {"tiny": experiment})
    assert source.live and source.rows == experiment.rows()
    assert "live run" in source.description and "24 images" in source.description
    write_run(tmp_path / "run", rows_for("mnist"))
    assert not curve_source(tmp_path, {"tiny": experiment}).live
    assert not curve_source(tmp_path, lambda: pytest.fail("the live run was made although results exist")).live
    with pytest.raises(ValueError, match="no live experiments"):
        curve_source(tmp_path / "absent", {})


def test_curves_are_seed_means_with_the_seed_range_shaded():
    rows = rows_for("mnist", seeds=(0, 1, 2)) + rows_for("fashionmnist", seeds=(0,))
    figure = loss_curves_figure(rows, title="from somewhere")
    assert figure.layout.title.text == "from somewhere"
    long_title = loss_curves_figure(rows, title="word " * 100).layout.title.text
    assert long_title.count("<br>") == 3 and max(len(line) for line in long_title.split("<br>")) <= 130
    # mnist: per method and panel a band and a line; fashionmnist: lines only
    assert len(figure.data) == 2 * 2 * 2 + 2 * 2
    ae_line = figure.data[1]
    assert ae_line.name == "AE (3 seeds)" and ae_line.showlegend
    assert np.allclose(ae_line.x, [10, 100])
    expected = [np.mean([0.5 / n + 0.1 * s for s in range(3)]) for n in (10, 100)]
    assert np.allclose(ae_line.y, expected, rtol=1e-4)
    band = figure.data[0]
    assert (
        band.fill == "toself"
        and band.mode == "lines"
        and np.isclose(max(band.y), 0.5 / 10 + 0.2)
        and np.isclose(min(band.y), 0.5 / 100)
    )
    time_line = figure.data[3]
    assert np.allclose(time_line.x, [1 + 1, 10 + 1]) and not time_line.showlegend  # mean wall time of the seeds
    assert figure.layout.xaxis.type == "log" and figure.layout.xaxis2.type == "log"
    assert [t.name for t in figure.data[8:]] == ["AE (1 seed)"] * 2 + ["GFE (AMD) (1 seed)"] * 2
    with pytest.raises(ValueError, match="at least one result row"):
        loss_curves_figure([])


def test_each_method_takes_its_longest_run_of_the_same_batch_and_latent_size(tmp_path):
    def settings(batch):
        return {"batch_size": batch, "latent_dim": 20}

    write_run(tmp_path / "both", rows_for("mnist", images=(10, 100)), settings=settings(16))
    write_run(tmp_path / "ae-long", rows_for("mnist", methods=("ae",), images=(10, 100, 10_000)), settings=settings(16))
    write_run(tmp_path / "gfe-long", rows_for("mnist", methods=("gfe",), images=(10, 1000)), settings=settings(16))
    write_run(tmp_path / "gfe-batch5", rows_for("mnist", methods=("gfe",), images=(10, 5000)), settings=settings(5))
    source = committed_results(tmp_path)
    assert source.folders == {("mnist", "ae"): tmp_path / "ae-long", ("mnist", "gfe"): tmp_path / "gfe-long"}
    reach = {m: max(r["images_seen"] for r in source.rows if r["method"] == m) for m in ("ae", "gfe")}
    assert reach == {"ae": 10_000, "gfe": 1000}
    assert "batch5" not in source.description


@pytest.fixture(scope="module")
def stored_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("stored") / "run"
    settings = DataEfficiencySettings(
        images=40, batch_size=5, methods=("gfe", "ae"), val_images=10, checkpoints=3, tau=10.0
    )
    run_data_efficiency(settings, out, device="cpu", progress=False)
    return out, settings


def test_the_slider_steps_through_every_stored_checkpoint(stored_run):
    out, settings = stored_run
    source = committed_results(out.parent)
    assert stored_reconstructions(source, "fashionmnist") is None  # no run of it
    stored = stored_reconstructions(source, "mnist", n_show=4)
    assert stored.images.shape == (4, 1, 28, 28)
    for method in ("ae", "gfe"):
        assert stored.images_seen[method] == settings.schedule()
        assert stored.reconstructions[method].shape == (len(settings.schedule()), 4, 1, 28, 28)
        rows = [r for r in source.rows if r["method"] == method]
        assert stored.val_loss[method] == [r["val_loss"] for r in rows]
    view = reconstruction_view(stored)
    assert list(view.controls["images_seen"].options) == settings.schedule()
    for k, images_seen in enumerate(settings.schedule()):
        view.update(images_seen=images_seen)
        heatmaps = [t for t in view.figure.data if isinstance(t, go.Heatmap)]
        assert [t.name for t in heatmaps] == ["original", "GFE (AMD)", "AE"]
        gfe = np.array(heatmaps[1].z, dtype=float)[:, :28]
        assert np.allclose(gfe, stored.reconstructions["gfe"][k, 0, 0].numpy(), atol=1e-3)
        assert view.summary["ae_val_loss"] == stored.val_loss["ae"][k]
        marker = [t for t in view.figure.data if t.name == "AE now"][0]
        assert list(marker.x) == [images_seen]


def test_a_method_shows_its_last_checkpoint_before_the_slider():
    images = torch.zeros(2, 1, 28, 28)
    r = Reconstructions(
        "mnist",
        images,
        {"ae": [16, 160, 1600], "gfe": [16, 100]},
        {"ae": torch.rand(3, 2, 1, 28, 28), "gfe": torch.rand(2, 2, 1, 28, 28)},
        {"ae": [0.5, 0.3, 0.2], "gfe": [0.4, 0.25]},
        "test",
    )
    view = reconstruction_view(r)
    assert list(view.controls["images_seen"].options) == [16, 100, 160, 1600]
    assert view.summary["gfe_images_seen"] == 100 and view.summary["ae_images_seen"] == 1600  # the last value
    view.update(images_seen=160)
    assert (view.summary["ae_images_seen"], view.summary["gfe_images_seen"]) == (160, 100)
    assert view.summary["gfe_val_loss"] == 0.25
    assert [t.name for t in view.figure.data if isinstance(t, go.Heatmap)] == ["original", "AE", "GFE (AMD)"]


def test_live_reconstructions_are_made_once_per_checkpoint(experiment):
    live = live_reconstructions(experiment, n_show=4)
    first, _ = experiment.runs["gfe"].reconstruct(experiment.val_images[:4], experiment.checkpoints[0])
    assert torch.equal(live.reconstructions["gfe"][0], first)
    assert live.val_loss["ae"] == experiment.runs["ae"].trainer.history.val_loss
    view = reconstruction_view(live)
    assert list(view.controls["images_seen"].options) == experiment.checkpoints
    made = []
    assert lesson_reconstructions(
        CurveSource([], "none", live=True), "tiny", lambda d: made.append(d) or experiment, n_show=4
    ).description.startswith("live")
    assert made == ["tiny"]
    with pytest.raises(ValueError, match="n_show must be a positive integer, got 0"):
        live_reconstructions(experiment, n_show=0)
