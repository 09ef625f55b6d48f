"""The data-efficiency experiment: schedule, summary, file format, resume and refusal to mix settings."""

import csv
import json
import math

import pytest
import torch

from gfe_viz.experiments import (DataEfficiencySettings, format_summary, plot_data_efficiency, read_rows,
                                 run_data_efficiency, summarise)
from gfe_viz.experiments import data_efficiency
from gfe_viz.experiments.results_io import FIELDS, write_rows

_CACHE = {}
_REAL_LOAD = data_efficiency.load_images


def _cached_load(dataset, root=None):
    """Each data set loaded once per session; loading itself is tested through the CLI."""
    if root is not None:
        return _REAL_LOAD(dataset, root=root)
    if dataset not in _CACHE:
        _CACHE[dataset] = _REAL_LOAD(dataset)
    return _CACHE[dataset]


@pytest.fixture(autouse=True)
def cached_data(monkeypatch):
    monkeypatch.setattr(data_efficiency, "load_images", _cached_load)


# gfe first so that an interruption inside it needs no saves of the larger AE state
TINY = DataEfficiencySettings(images=100, methods=("gfe", "ae"), seeds=(0,), val_images=20, checkpoints=4, tau=100.0)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """An uninterrupted tiny run, shared by the tests that only read it."""
    out = tmp_path_factory.mktemp("full")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(data_efficiency, "load_images", _cached_load)
        result = run_data_efficiency(TINY, out, device="cpu", command="test", progress=False)
    return result


def _without_wall_time(rows):
    return [{k: v for k, v in r.items() if k != "wall_time"} for r in rows]


# --- schedule and settings ---------------------------------------------------------------------

def test_schedule_is_log_spaced_whole_batches_ending_at_images():
    s = DataEfficiencySettings(images=100_000, batch_size=5, checkpoints=11)
    points = s.schedule()
    assert points[0] == 5 and points[-1] == 100_000 and len(points) == 11
    exact = [5 * (100_000 / 5) ** (i / 10) for i in range(11)]  # equal steps in log(images)
    assert all(p % 5 == 0 and 0 <= p - e < 5 + 1e-6 for p, e in zip(points, exact))


def test_schedule_rounds_up_to_whole_batches_and_merges_duplicates():
    s = DataEfficiencySettings(images=12, batch_size=5, checkpoints=10)
    assert s.schedule() == [5, 10, 15]
    assert DataEfficiencySettings(images=12, batch_size=5, checkpoints=1).schedule() == [15]


@pytest.mark.parametrize("change, message", [
    ({"datasets": ("cifar",)}, "dataset must be one of"),
    ({"methods": ("vae",)}, "method must be one of"),
    ({"methods": ("gfe", "gfe")}, "must not repeat"),
    ({"images": 0}, "images must be a positive integer, got 0"),
    ({"images": 3, "batch_size": 5}, "images must be >= batch_size=5, got 3"),
    ({"seeds": (-1,)}, "seeds must be"),
    ({"tau": -1.0}, "tau must be a finite number > 0, got -1.0"),
    ({"amd": "fast"}, "amd must be one of"),
    ({"methods": ("gfe_full",), "order": 2}, "gfe_full"),
])
def test_bad_settings_raise_naming_the_parameter(change, message):
    with pytest.raises(ValueError, match=message):
        DataEfficiencySettings(**change)


def test_train_configs_share_everything_but_the_method():
    s = DataEfficiencySettings(methods=("ae", "gfe"), tau=50.0, acceptance="batch", order=2, amd="default")
    ae, gfe = s.train_config("ae", 3), s.train_config("gfe", 3)
    assert (ae.method, gfe.method) == ("ae", "gfe")
    assert ae.batch_size == gfe.batch_size and ae.lr == gfe.lr and ae.seed == gfe.seed == 3
    assert gfe.encoding.tau == 50.0 and gfe.encoding.acceptance == "batch" and gfe.encoding.order == 2
    assert gfe.encoding.amd == data_efficiency.AMD_PRESETS["default"]


# --- summary -----------------------------------------------------------------------------------

def _rows(method, seed, losses, images=(10, 100, 1000)):
    return [{"dataset": "mnist", "method": method, "seed": seed, "images_seen": n, "val_loss": v, "train_loss": v,
             "wall_time": float(n), "encoder_nfe": 0.0} for n, v in zip(images, losses)]


def test_summary_counts_images_to_reach_the_ae_final_loss_on_the_seed_mean():
    rows = (_rows("ae", 0, [0.5, 0.3, 0.2]) + _rows("ae", 1, [0.5, 0.3, 0.2])
            + _rows("gfe", 0, [0.4, 0.19, 0.1]) + _rows("gfe", 1, [0.4, 0.23, 0.1]))
    entry = summarise(rows)["mnist"]
    assert entry["target"] == pytest.approx(0.2) and entry["target_source"] == "ae_final"
    assert entry["methods"]["ae"]["images"] == 1000 and entry["methods"]["ae"]["above_at"] == 100
    # seed mean at 100 images is 0.21 > 0.2, so the mean curve first reaches it at 1000; seed 0 at 100
    assert entry["methods"]["gfe"]["images"] == 1000
    assert entry["methods"]["gfe"]["per_seed"] == {"0": 100, "1": 1000}
    assert entry["ratio"] == {"gfe": 1.0}
    assert entry["ratio_bounds"] == {"gfe": [0.1, 10.0]}  # AE crosses in (100, 1000], GFE in (100, 1000]


def test_summary_ratio_and_a_target_never_reached():
    rows = _rows("ae", 0, [0.5, 0.3, 0.2]) + _rows("gfe", 0, [0.2, 0.1, 0.05])
    entry = summarise(rows)["mnist"]
    assert entry["methods"]["gfe"]["images"] == 10 and entry["methods"]["gfe"]["above_at"] == 0
    assert entry["ratio"]["gfe"] == pytest.approx(100.0)
    assert entry["ratio_bounds"]["gfe"] == [10.0, None]  # GFE may cross before its first checkpoint
    strict = summarise(rows, target=0.01)["mnist"]
    assert strict["target_source"] == "given" and strict["methods"]["gfe"]["images"] is None
    assert strict["ratio"] == {}
    assert "gfe: final val loss 0.0500 after 1,000 images" in format_summary({"mnist": strict})
    assert "does not reach the target" in format_summary({"mnist": strict})


def test_summary_of_a_partial_run_uses_checkpoints_every_seed_reached():
    rows = _rows("ae", 0, [0.5, 0.3, 0.2]) + _rows("ae", 1, [0.6, 0.4])
    entry = summarise(rows)["mnist"]
    assert entry["methods"]["ae"]["final_images_seen"] == 100
    assert entry["target"] == pytest.approx(0.35)


def test_csv_round_trip_is_exact(tmp_path):
    rows = _rows("gfe", 2, [1 / 3, 0.1 + 0.2, math.nan])
    write_rows(tmp_path / "r.csv", rows)
    back = read_rows(tmp_path / "r.csv")
    assert _without_wall_time(back[:2]) == _without_wall_time(rows[:2]) and math.isnan(back[2]["val_loss"])
    assert isinstance(back[0]["seed"], int) and isinstance(back[0]["images_seen"], int)


def test_figure_has_two_panels_per_dataset_with_shaded_seed_spread():
    rows = _rows("ae", 0, [0.5, 0.3, 0.2]) + _rows("ae", 1, [0.6, 0.3, 0.25]) + _rows("gfe", 0, [0.4, 0.2, 0.1])
    fig = plot_data_efficiency(rows, summarise(rows))
    axes = fig.get_axes()
    assert len(axes) == 2 and axes[0].get_xscale() == "log"
    assert len(axes[0].collections) == 1  # only the AE has two seeds to shade
    assert len(axes[0].get_lines()) == 3  # two curves and the target line


# --- end to end --------------------------------------------------------------------------------

def test_tiny_run_writes_the_documented_files(full_run):
    folder = full_run.folder
    names = {p.name for p in folder.iterdir()}
    assert {"results.csv", "run.json", "summary.json", "summary.txt", "data_efficiency.png", "checkpoints"} <= names
    with open(folder / "results.csv", newline="") as f:
        assert tuple(next(csv.reader(f))) == FIELDS
    rows = read_rows(folder / "results.csv")
    assert rows == full_run.rows
    schedule = TINY.schedule()
    for method in ("gfe", "ae"):
        mine = [r for r in rows if r["method"] == method]
        assert [r["images_seen"] for r in mine] == schedule
        assert all(r["dataset"] == "mnist" and r["seed"] == 0 for r in mine)
        assert all(0 < r["val_loss"] < 1 and 0 < r["train_loss"] < 1 for r in mine)
        assert mine[-1]["val_loss"] < mine[0]["val_loss"]  # it learns
        assert all(a["wall_time"] < b["wall_time"] for a, b in zip(mine, mine[1:]))
        assert all((r["encoder_nfe"] > 0) == (method == "gfe") for r in mine)
    run = json.loads((folder / "run.json").read_text())
    assert run["settings"] == TINY.to_dict() and run["completed"]
    (invocation,) = run["invocations"]
    assert invocation["command"] == "test" and invocation["device"] == "cpu"
    assert invocation["package_version"] and invocation["torch_version"] == torch.__version__
    assert invocation["machine"]["cpu_count"] >= 1
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["mnist"]["target"] == pytest.approx([r for r in rows if r["method"] == "ae"][-1]["val_loss"])
    assert "mnist: target validation loss" in (folder / "summary.txt").read_text()


def test_methods_start_from_the_same_decoder():
    settings = DataEfficiencySettings(images=5, methods=("gfe", "ae"), val_images=5, checkpoints=1, tau=10.0)
    images = data_efficiency._Images(train=torch.rand(20, 1, 28, 28), val=torch.rand(5, 1, 28, 28))
    gfe, ae = (data_efficiency._trainer(settings, data_efficiency.Unit("mnist", m, 7), images, "cpu", None)
               for m in ("gfe", "ae"))
    assert all(torch.equal(a, b) for a, b in zip(gfe.model.state_dict().values(), ae.model.decoder.state_dict().values()))
    other = data_efficiency._trainer(settings, data_efficiency.Unit("mnist", "gfe", 8), images, "cpu", None)
    assert not torch.equal(other.model.net[0].weight, gfe.model.net[0].weight)


def test_interrupted_run_resumes_to_the_uninterrupted_results(full_run, tmp_path):
    out = tmp_path / "run"

    def stop(unit, trainer):  # saves follow every step here; stop between two checkpoints
        if unit.method == "gfe" and trainer.images_seen == 25:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_data_efficiency(TINY, out, device="cpu", progress=False, save_every=1e-9, on_save=stop)
    assert TINY.schedule() == [5, 15, 40, 100]
    partial = read_rows(out / "results.csv")
    assert [(r["method"], r["images_seen"]) for r in partial] == [("gfe", 5), ("gfe", 15)]
    assert not (out / "summary.json").exists()
    assert json.loads((out / "run.json").read_text())["completed"] is None

    saves = []
    resumed = run_data_efficiency(TINY, out, device="cpu", command="again", progress=False,
                                  on_save=lambda unit, trainer: saves.append((unit.method, trainer.images_seen)))
    assert saves[0] == ("gfe", TINY.schedule()[2])  # continued from the state saved at 25, not from the start
    rows = read_rows(out / "results.csv")
    assert _without_wall_time(rows) == _without_wall_time(full_run.rows)
    gfe_times = [r["wall_time"] for r in rows if r["method"] == "gfe"]
    assert gfe_times == sorted(gfe_times)  # the training clock continued too
    for method in ("gfe", "ae"):
        again, first = resumed.summary["mnist"]["methods"][method], full_run.summary["mnist"]["methods"][method]
        assert (again["images"], again["final_val_loss"]) == (first["images"], first["final_val_loss"])
    commands = [i["command"] for i in json.loads((out / "run.json").read_text())["invocations"]]
    assert commands == [None, "again"]


def test_other_settings_in_the_same_folder_are_refused_untouched(full_run):
    folder = full_run.folder
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    other = DataEfficiencySettings(**{**vars(TINY), "images": 200})
    with pytest.raises(ValueError, match=r"other settings \(images: 100 there, 200 now\)"):
        run_data_efficiency(other, folder, device="cpu", progress=False)
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


def test_a_non_empty_folder_without_run_json_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty and has no run.json"):
        run_data_efficiency(TINY, tmp_path, device="cpu", progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_compare_curves_pairs_seeds_and_uses_the_seed_spread():
    from gfe_viz.experiments.summary import compare_curves

    def rows(method, losses):  # losses[seed] = [loss at 10 images, loss at 20 images]
        return [{"dataset": "mnist", "method": method, "seed": s, "images_seen": n, "val_loss": v, "train_loss": 0.0,
                 "wall_time": 1.0, "encoder_nfe": 1.0} for s, seq in losses.items() for n, v in zip((10, 20), seq)]

    ref = rows("gfe", {0: [0.50, 0.30], 1: [0.52, 0.32], 2: [0.54, 0.34]})
    cand = rows("gfe_fast", {0: [0.51, 0.40], 1: [0.53, 0.41], 2: [0.55, 0.42], 3: [9.0, 9.0]})  # seed 3: unpaired
    table = compare_curves(ref + cand, "mnist", "gfe", "gfe_fast")
    assert [t["images_seen"] for t in table] == [10, 20] and table[0]["seeds"] == [0, 1, 2]
    assert table[0]["reference_std"] == pytest.approx(0.02) and table[0]["paired_difference"] == pytest.approx(0.01)
    assert table[0]["equal_or_lower"]  # 0.01 higher, within the seed spread of 0.02
    assert not table[1]["equal_or_lower"]  # 0.09 higher, outside a spread of 0.02
    with pytest.raises(ValueError, match="share no seed"):
        compare_curves(ref + rows("gfe_fast", {7: [0.1, 0.1]}), "mnist", "gfe", "gfe_fast")


# --- parallel units and status -------------------------------------------------------------------

PAIR = DataEfficiencySettings(images=100, batch_size=20, methods=("gfe",), seeds=(0, 1), val_images=10,
                              checkpoints=3, tau=50.0)


@pytest.fixture(scope="module")
def sequential_pair(tmp_path_factory):
    from gfe_viz.device import torch_threads

    out = tmp_path_factory.mktemp("sequential")
    with pytest.MonkeyPatch.context() as mp, torch_threads(1):  # one thread, as in the workers: equal rounding
        mp.setattr(data_efficiency, "load_images", _cached_load)
        return run_data_efficiency(PAIR, out, device="cpu", progress=False)


@pytest.mark.parametrize("executor, cluster", [("local", None), ("slurm", "local")], ids=["processes", "submitit"])
def test_parallel_units_give_the_sequential_results(sequential_pair, tmp_path, executor, cluster):
    parallel = run_data_efficiency(PAIR, tmp_path, device="cpu", progress=False, jobs=2, executor=executor,
                                   cluster=cluster)
    assert _without_wall_time(parallel.rows) == _without_wall_time(sequential_pair.rows)
    assert _without_wall_time(read_rows(tmp_path / "results.csv")) == _without_wall_time(sequential_pair.rows)
    assert parallel.summary == sequential_pair.summary and len(parallel.rows) == 2 * 3
    if executor == "slurm":
        assert any((tmp_path / "submitit").iterdir()), "submitit keeps its logs in the run folder"


def test_status_reports_each_units_images_without_training(tmp_path):
    from gfe_viz.experiments.data_efficiency import format_status, run_status

    def stop(unit, trainer):
        if unit.seed == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_data_efficiency(PAIR, tmp_path, device="cpu", progress=False, save_every=1e-9, on_save=stop)
    before = sorted(p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file())
    status = run_status(tmp_path)
    assert [s["unit"] for s in status] == ["mnist-gfe-seed0", "mnist-gfe-seed1"]
    assert status[0]["images_seen"] == 100 and status[0]["finished"] and status[0]["val_loss"] > 0
    assert status[1]["images_seen"] == 20 and not status[1]["finished"]
    text = format_status(status)
    assert "mnist-gfe-seed1" in text and "20 / 100 images" in text and text.count("finished") == 1
    assert sorted(p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()) == before  # nothing written
    with pytest.raises(FileNotFoundError, match="no run.json"):
        run_status(tmp_path / "nothing")
