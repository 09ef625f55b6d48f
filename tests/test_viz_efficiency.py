"""The data-efficiency lesson's sources, curves and reconstruction view."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest
from test_live_experiment import FAST, tiny_splits

from gfe_viz.experiments.results_io import write_rows
from gfe_viz.live_experiment import run_live_experiment
from gfe_viz.viz.efficiency import (committed_results, curve_source, loss_curves_figure,
                                    reconstruction_view)


@pytest.fixture(scope="module")
def experiment():
    return run_live_experiment(methods=("ae", "gfe"), n_images=24, latent_dim=2, batch_size=8, n_checkpoints=3,
                               n_val=10, encoding=FAST, splits=tiny_splits())


def rows_for(dataset: str, methods=("ae", "gfe"), seeds=(0,), images=(10, 100)) -> list[dict]:
    return [{"dataset": dataset, "method": m, "seed": s, "images_seen": n, "val_loss": 0.5 / n + 0.1 * s + 0.01 * k,
             "train_loss": 0.3, "wall_time": n * (k + 1) / 10 + s, "encoder_nfe": 0.0}
            for k, m in enumerate(methods) for s in seeds for n in images]


def write_run(folder, rows, command="gfe-viz data-efficiency --images 100", completed=True):
    folder.mkdir(parents=True)
    write_rows(folder / "results.csv", rows)
    run = {"settings": {}, "invocations": [{"command": command}], "completed": "2026" if completed else None}
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


def test_curve_source_falls_back_on_the_live_run(tmp_path, experiment):
    source = curve_source(tmp_path / "absent", {"tiny": experiment})
    assert source.live and source.rows == experiment.rows()
    assert "live run" in source.description and "24 images" in source.description
    write_run(tmp_path / "run", rows_for("mnist"))
    assert not curve_source(tmp_path, {"tiny": experiment}).live
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
    assert band.fill == "toself" and band.mode == "lines" and np.isclose(max(band.y), 0.5 / 10 + 0.2) and np.isclose(min(band.y), 0.5 / 100)
    time_line = figure.data[3]
    assert np.allclose(time_line.x, [1 + 1, 10 + 1]) and not time_line.showlegend  # mean wall time of the seeds
    assert figure.layout.xaxis.type == "log" and figure.layout.xaxis2.type == "log"
    assert [t.name for t in figure.data[8:]] == ["AE (1 seed)"] * 2 + ["GFE (AMD) (1 seed)"] * 2
    with pytest.raises(ValueError, match="at least one result row"):
        loss_curves_figure([])


def test_reconstruction_view_follows_the_images_seen_slider(experiment):
    view = reconstruction_view({"tiny": experiment}, n_show=4)
    assert set(view.controls) == {"dataset", "images_seen"}
    assert list(view.controls["images_seen"].options) == experiment.checkpoints
    heatmaps = [t for t in view.figure.data if isinstance(t, go.Heatmap)]
    assert [t.name for t in heatmaps] == ["original", "AE", "GFE (AMD)"]
    assert heatmaps[0].z.shape == (4, 4 * 5 - 1)
    last = {k: view.summary[k] for k in ("ae_loss", "gfe_loss")}
    gfe_before = np.array(heatmaps[2].z, dtype=float)

    view.update(images_seen=experiment.checkpoints[0])
    assert view.summary["images_seen"] == experiment.checkpoints[0]
    _, losses = experiment.runs["gfe"].reconstruct(experiment.val_images[:4], experiment.checkpoints[0])
    assert view.summary["gfe_loss"] == pytest.approx(losses.mean().item())
    assert view.summary["ae_loss"] != last["ae_loss"]
    gfe_now = np.array([t for t in view.figure.data if isinstance(t, go.Heatmap)][2].z, dtype=float)
    assert not np.allclose(np.nan_to_num(gfe_now), np.nan_to_num(gfe_before))
    marker = [t for t in view.figure.data if t.name == "AE now"][0]
    assert list(marker.x) == [experiment.checkpoints[0]]


def test_reconstruction_view_needs_common_checkpoints(experiment):
    other = run_live_experiment(methods=("ae",), n_images=8, latent_dim=2, batch_size=8, n_checkpoints=1, n_val=4,
                                splits=tiny_splits())
    with pytest.raises(ValueError, match="share their checkpoints"):
        reconstruction_view({"a": experiment, "b": other})
    with pytest.raises(ValueError, match="n_show must be a positive integer, got 0"):
        reconstruction_view({"a": experiment}, n_show=0)
