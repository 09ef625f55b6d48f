"""The data-efficiency experiment: schedule, summary, file format, resume and refusal to mix settings."""

import csv
import io
import json
import math
import os
import re
import signal
import threading
from pathlib import Path

import pytest
import torch

from gfe_viz.data import load_images
from gfe_viz.experiments import (
    DataEfficiencySettings,
    data_efficiency,
    format_summary,
    plot_data_efficiency,
    read_rows,
    run_data_efficiency,
    summarise,
)
from gfe_viz.experiments.folder_lock import LOCK_FILE, FolderInUseError
from gfe_viz.experiments.results_io import FIELDS, DamagedFileError, atomic_write_json, write_rows
from gfe_viz.training import History, TrainingDiverged

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


@pytest.mark.parametrize(
    "change, message",
    [
        ({"datasets": ("cifar",)}, "dataset must be one of"),
        ({"methods": ("vae",)}, "method must be one of"),
        ({"methods": ("gfe", "gfe")}, "must not repeat"),
        ({"images": 0}, "images must be a positive integer, got 0"),
        ({"images": 3, "batch_size": 5}, "images must be >= batch_size=5, got 3"),
        ({"seeds": (-1,)}, "seeds must be"),
        ({"tau": -1.0}, "tau must be a finite number > 0, got -1.0"),
        ({"amd": "fast"}, "amd must be one of"),
        ({"acceptance": "global"}, "acceptance must be one of \\['batch', 'per_sample'\\], got 'global'"),
        ({"order": 3}, "order must be one of \\[1, 2\\], got 3"),
        ({"encoder": "faster"}, "encoder must be one of \\['fast', 'paper'\\], got 'faster'"),
        ({"methods": ("gfe_full",), "order": 2}, "gfe_full"),
    ],
)
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
    return [
        {
            "dataset": "mnist",
            "method": method,
            "seed": seed,
            "images_seen": n,
            "val_loss": v,
            "train_loss": v,
            "wall_time": float(n),
            "encoder_nfe": 0.0,
        }
        for n, v in zip(images, losses)
    ]


def test_summary_counts_images_to_reach_the_ae_final_loss_on_the_seed_mean():
    rows = (
        _rows("ae", 0, [0.5, 0.3, 0.2])
        + _rows("ae", 1, [0.5, 0.3, 0.2])
        + _rows("gfe", 0, [0.4, 0.19, 0.1])
        + _rows("gfe", 1, [0.4, 0.23, 0.1])
    )
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


def test_images_to_reach_brackets_each_target_on_both_curves():
    from gfe_viz.experiments.summary import images_to_reach

    rows = _rows("ae", 0, [0.5, 0.3, 0.2]) + _rows("gfe", 0, [0.4, 0.2, 0.1])
    images = sorted({r["images_seen"] for r in rows})
    low, mid, high = images
    table = images_to_reach(rows, "mnist", [0.3, 0.15, 0.05])
    assert table[0]["methods"] == {"ae": (mid, low), "gfe": (mid, low)}
    assert table[0]["ratio"]["gfe"] == pytest.approx((1.0, low / mid, mid / low))
    assert table[1]["methods"] == {"ae": (None, None), "gfe": (high, mid)} and table[1]["ratio"] == {}
    assert table[2]["methods"]["gfe"] == (None, None)
    first = images_to_reach(rows, "mnist", [0.45])[0]  # GFE starts below it: reached at its first checkpoint
    assert first["methods"]["gfe"] == (low, 0) and first["ratio"]["gfe"][2] is None


def test_images_to_reach_gives_each_seeds_own_crossing():
    from gfe_viz.experiments.summary import images_to_reach

    rows = _rows("gfe", 0, [0.4, 0.2, 0.1]) + _rows("gfe", 1, [0.4, 0.3, 0.2])
    low, mid, high = sorted({r["images_seen"] for r in rows})
    row = images_to_reach(rows, "mnist", [0.2])[0]
    assert row["seeds"] == {"gfe": {0: mid, 1: high}}
    assert row["methods"]["gfe"] == (high, mid)  # the seed mean 0.25 at mid is still above the target
    assert images_to_reach(rows, "mnist", [0.15])[0]["seeds"]["gfe"] == {0: high, 1: None}


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


def test_every_checkpoint_stores_the_reconstructions_of_the_first_validation_images(full_run):
    stored = data_efficiency.load_reconstructions(full_run.folder)
    n, schedule = data_efficiency.RECONSTRUCTED_IMAGES, TINY.schedule()
    val = load_images("mnist").test[:n]
    assert torch.equal(stored["images"]["mnist"], (val * 255).round().to(torch.uint8))
    for method in ("gfe", "ae"):
        unit = stored["units"][f"mnist-{method}-seed0"]
        assert unit["images_seen"] == schedule and unit["method"] == method
        assert unit["reconstructions"].shape == (len(schedule), n, 1, 28, 28)
        assert unit["reconstructions"].dtype == torch.uint8
        # the last ones are the final decoder's, as Trainer.reconstruct makes them
        state = torch.load(full_run.folder / "checkpoints" / f"mnist-{method}-seed0.pt", weights_only=True)
        trainer = data_efficiency._trainer(
            TINY,
            data_efficiency.Unit("mnist", method, 0),
            data_efficiency._Images(train=val, val=val),
            "cpu",
            state["trainer"],
        )
        expected = (trainer.reconstruct(val)[0] * 255).round().to(torch.uint8)
        assert (unit["reconstructions"][-1].int() - expected.int()).abs().max() <= 1
        assert not torch.equal(unit["reconstructions"][0], unit["reconstructions"][-1])  # training changed them


def test_methods_start_from_the_same_decoder():
    settings = DataEfficiencySettings(images=5, methods=("gfe", "ae"), val_images=5, checkpoints=1, tau=10.0)
    images = data_efficiency._Images(train=torch.rand(20, 1, 28, 28), val=torch.rand(5, 1, 28, 28))
    gfe, ae = (
        data_efficiency._trainer(settings, data_efficiency.Unit("mnist", m, 7), images, "cpu", None)
        for m in ("gfe", "ae")
    )
    assert all(
        torch.equal(a, b) for a, b in zip(gfe.model.state_dict().values(), ae.model.decoder.state_dict().values())
    )
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
    resumed = run_data_efficiency(
        TINY,
        out,
        device="cpu",
        command="again",
        progress=False,
        on_save=lambda unit, trainer: saves.append((unit.method, trainer.images_seen)),
    )
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
    resumed_units = data_efficiency.load_reconstructions(out)["units"]
    for name, unit in data_efficiency.load_reconstructions(full_run.folder)["units"].items():
        assert resumed_units[name]["images_seen"] == unit["images_seen"]
        assert (resumed_units[name]["reconstructions"].int() - unit["reconstructions"].int()).abs().max() <= 1


def test_sigterm_saves_the_step_in_progress_and_the_same_command_resumes(full_run, tmp_path):
    out = tmp_path / "run"

    def terminate(unit, trainer):  # as `kill` would, during the step after the checkpoint at 15
        if unit.method == "gfe" and trainer.images_seen == 15:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(KeyboardInterrupt):
        run_data_efficiency(TINY, out, device="cpu", progress=False, on_save=terminate)
    assert [s["images_seen"] for s in data_efficiency.run_status(out)] == [20, 0]  # saved, though no checkpoint
    resumed = run_data_efficiency(TINY, out, device="cpu", progress=False)
    assert _without_wall_time(resumed.rows) == _without_wall_time(full_run.rows)


def test_a_run_stopped_at_an_image_count_is_the_first_part_of_the_full_run(full_run, tmp_path):
    out = tmp_path / "run"
    part = run_data_efficiency(TINY, out, device="cpu", progress=False, stop_at=60)
    assert TINY.schedule() == [5, 15, 40, 100]
    expected = [r for r in full_run.rows if r["images_seen"] <= 40]
    assert _without_wall_time(part.rows) == _without_wall_time(expected)
    run = json.loads((out / "run.json").read_text())
    assert run["completed"] is None and run["paused_at"]["images"] == 40
    assert [s["images_seen"] for s in data_efficiency.run_status(out)] == [40, 40]
    assert (out / "summary.json").exists()  # the part is a result of its own
    again = run_data_efficiency(TINY, out, device="cpu", progress=False, stop_at=99)  # the same part: nothing to do
    assert _without_wall_time(again.rows) == _without_wall_time(part.rows)
    rest = run_data_efficiency(TINY, out, device="cpu", progress=False)
    assert _without_wall_time(rest.rows) == _without_wall_time(full_run.rows)
    run = json.loads((out / "run.json").read_text())
    assert run["completed"] is not None and "paused_at" not in run


@pytest.mark.parametrize(
    "stop_at, message",
    [(0, "stop_at must be a positive integer"), (4, "stop_at must be at least the first checkpoint, 5 images, got 4")],
)
def test_a_bad_stop_at_is_refused_before_anything_is_written(tmp_path, stop_at, message):
    with pytest.raises(ValueError, match=message):
        run_data_efficiency(TINY, tmp_path / "run", device="cpu", progress=False, stop_at=stop_at)
    assert not (tmp_path / "run").exists()


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


# --- files: no code execution, no silent mix-ups ------------------------------------------------------


def _copy(folder, tmp_path):
    import shutil

    return shutil.copytree(folder, tmp_path / "copy")


def _snapshot(folder):
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


class _Planted:
    """A pickle that creates ``marker`` when it is unpickled with code execution allowed."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_a_planted_pickle_in_a_run_folder_runs_nothing(full_run, tmp_path):
    folder = _copy(full_run.folder, tmp_path)
    marker = tmp_path / "code-ran"
    path = folder / "checkpoints" / "mnist-gfe-seed0.pt"
    torch.save({"trainer": _Planted(marker)}, path)
    before = _snapshot(folder)
    with pytest.raises(DamagedFileError, match=re.escape(str(path))) as info:
        run_data_efficiency(TINY, folder, device="cpu", progress=False)
    assert not marker.exists(), "loading a saved state must never run code from it"
    assert "delete it to train mnist-gfe-seed0 again" in str(info.value)
    assert _snapshot(folder) == before


def test_swapped_checkpoints_are_refused_naming_the_file(full_run, tmp_path):
    folder = _copy(full_run.folder, tmp_path)
    gfe, ae = folder / "checkpoints" / "mnist-gfe-seed0.pt", folder / "checkpoints" / "mnist-ae-seed0.pt"
    gfe_bytes = gfe.read_bytes()
    gfe.write_bytes(ae.read_bytes())
    ae.write_bytes(gfe_bytes)
    before = _snapshot(folder)
    with pytest.raises(DamagedFileError, match=re.escape(f"{gfe} holds the state of mnist-ae-seed0")) as info:
        run_data_efficiency(TINY, folder, device="cpu", progress=False)
    assert "not of mnist-gfe-seed0" in str(info.value)
    assert _snapshot(folder) == before, "the summary must not report one method's curve as the other's"


def test_a_state_of_other_settings_is_refused(full_run, tmp_path):
    folder = _copy(full_run.folder, tmp_path)
    path = folder / "checkpoints" / "mnist-gfe-seed0.pt"
    state = torch.load(path, weights_only=True)
    state["settings_digest"] = "0123456789abcdef"
    torch.save(state, path)
    with pytest.raises(
        DamagedFileError,
        match="settings digest 0123456789abcdef, not of mnist-gfe-seed0 with this "
        f"folder's settings \\(digest {TINY.digest()}\\)",
    ):
        run_data_efficiency(TINY, folder, device="cpu", progress=False)


@pytest.mark.parametrize("damage", ["truncated", "random"])
def test_a_damaged_checkpoint_gives_one_error_naming_it(full_run, tmp_path, damage):
    folder = _copy(full_run.folder, tmp_path)
    path = folder / "checkpoints" / "mnist-ae-seed0.pt"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3] if damage == "truncated" else os.urandom(2000))
    before = _snapshot(folder)
    with pytest.raises(DamagedFileError) as info:
        run_data_efficiency(TINY, folder, device="cpu", progress=False)
    message = str(info.value)
    assert message.startswith(f"{path} is damaged or not a file gfe-viz wrote")
    assert message.endswith("delete it to train mnist-ae-seed0 again from the start, or put the right file back")
    assert _snapshot(folder) == before


@pytest.mark.parametrize("content", ['{"settings": {"images": 1', "[1, 2]", ""])
def test_a_damaged_run_json_gives_one_error_naming_it(full_run, tmp_path, content):
    folder = _copy(full_run.folder, tmp_path)
    (folder / "run.json").write_text(content)
    before = _snapshot(folder)
    with pytest.raises(DamagedFileError, match=re.escape(f"{folder / 'run.json'} is damaged")) as info:
        run_data_efficiency(TINY, folder, device="cpu", progress=False)
    assert "restore it from a copy, or use another --out folder" in str(info.value)
    assert _snapshot(folder) == before


def test_summary_json_is_strict_json(tmp_path):
    rows = _rows("ae", 0, [0.5, 0.3, math.nan]) + _rows("gfe", 0, [0.4, 0.2, 0.1])
    atomic_write_json(tmp_path / "summary.json", summarise(rows))

    def refuse(name):
        raise ValueError(f"bare {name} in the JSON")

    back = json.loads((tmp_path / "summary.json").read_text(), parse_constant=refuse)
    assert back["mnist"]["target"] is None and back["mnist"]["methods"]["ae"]["final_val_loss"] is None


def test_the_figure_is_written_atomically(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    rows = _rows("ae", 0, [0.5, 0.3, 0.2]) + _rows("gfe", 0, [0.4, 0.2, 0.1])
    path = tmp_path / "data_efficiency.png"
    plot_data_efficiency(rows, summarise(rows), path)
    good = path.read_bytes()
    real_savefig = Figure.savefig

    def interrupted(self, target, **kwargs):  # writes the start of a PNG, then the process is interrupted
        png = io.BytesIO()
        real_savefig(self, png, format="png")
        if hasattr(target, "write"):
            target.write(png.getvalue()[:100])
        else:
            Path(target).write_bytes(png.getvalue()[:100])
        raise KeyboardInterrupt

    monkeypatch.setattr(Figure, "savefig", interrupted)
    with pytest.raises(KeyboardInterrupt):
        plot_data_efficiency(rows, summarise(rows), path)
    assert path.read_bytes() == good, "an interrupted save leaves the previous figure whole"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


# --- one run per folder, one numerical regime per run -----------------------------------------------

QUICK = DataEfficiencySettings(images=10, methods=("ae",), val_images=5, checkpoints=2, tau=10.0)


def test_two_commands_into_one_new_folder_one_is_refused_naming_the_holder(tmp_path, monkeypatch):
    out = tmp_path / "run"
    both_checked = threading.Barrier(2, timeout=120)
    refused = threading.Event()
    real_load = data_efficiency._load

    def load_after_both_checked(*args):  # both commands have looked at the folder and found it new
        both_checked.wait()
        return real_load(*args)

    monkeypatch.setattr(data_efficiency, "_load", load_after_both_checked)
    outcomes = {}

    def command(lr):
        settings = DataEfficiencySettings(**{**vars(QUICK), "lr": lr})
        try:  # the lock holder waits in its first save until the other command was refused
            outcomes[lr] = run_data_efficiency(
                settings, out, device="cpu", progress=False, threads=1, on_save=lambda unit, trainer: refused.wait(120)
            )
        except Exception as exc:
            outcomes[lr] = exc
            refused.set()

    threads = [threading.Thread(target=command, args=(lr,)) for lr in (1e-3, 2e-3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    done = {lr: o for lr, o in outcomes.items() if isinstance(o, data_efficiency.RunOutput)}
    failed = {lr: o for lr, o in outcomes.items() if isinstance(o, Exception)}
    assert len(done) == 1 and len(failed) == 1, outcomes
    (winner,), (error,) = done, failed.values()
    assert isinstance(error, FolderInUseError)
    assert f"out folder {out} is in use by another run (pid {os.getpid()} on " in str(error)
    run = json.loads((out / "run.json").read_text())
    assert run["settings"]["lr"] == winner and len(run["invocations"]) == 1
    assert len(read_rows(out / "results.csv")) == len(QUICK.schedule())
    assert not (out / LOCK_FILE).exists(), "the lock is released when the command ends"


def test_a_stale_lock_left_by_a_killed_run_is_taken_over(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_FILE).write_text(json.dumps({"pid": 999999, "host": "gone", "command": "killed", "started": "then"}))
    with pytest.warns(
        UserWarning,
        match="took over the lock .* left by a run that ended without releasing it "
        r"\(pid 999999 on gone",
    ):
        result = run_data_efficiency(QUICK, out, device="cpu", progress=False, threads=1)
    assert result.summary and not (out / LOCK_FILE).exists()


def test_a_resume_with_other_threads_is_refused(tmp_path):
    out = tmp_path / "run"

    def stop(unit, trainer):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_data_efficiency(QUICK, out, device="cpu", progress=False, threads=1, on_save=stop)
    before = _snapshot(out)
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"out folder {out} was trained with --device cpu --threads 1, this command has --device cpu --threads 2: "
            "resuming would mix two numerical regimes"
        ),
    ):
        run_data_efficiency(QUICK, out, device="cpu", progress=False, threads=2)
    assert _snapshot(out) == before
    assert run_data_efficiency(QUICK, out, device="cpu", progress=False, threads=1).rows


def test_threads_follow_the_batch_size_unless_given(tmp_path):
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        run_data_efficiency(QUICK, tmp_path / "auto", device="cpu", progress=False)
        assert torch.get_num_threads() == 2, "the caller's thread count is restored"
    finally:
        torch.set_num_threads(previous)
    run = json.loads((tmp_path / "auto" / "run.json").read_text())
    assert run["invocations"][0]["machine"]["torch_threads"] == 1  # batch 5: one thread


def test_validation_and_checkpoints_are_sized_to_the_run():
    quick = DataEfficiencySettings(images=200)
    assert (quick.val_images, quick.checkpoints) == (100, 4)
    documented = DataEfficiencySettings(images=3000)  # the README's runs
    assert (documented.val_images, documented.checkpoints) == (1000, 15)
    assert DataEfficiencySettings(images=200, val_images=50, checkpoints=9).schedule()[-1] == 200
    assert DataEfficiencySettings(images=200).to_dict()["val_images"] == 100  # run.json records the sizes used


# --- a diverging unit stops, the others go on ----------------------------------------------------


def test_a_diverging_unit_stops_and_the_others_go_on(tmp_path, monkeypatch):
    out = tmp_path / "run"
    settings = DataEfficiencySettings(images=20, methods=("ae", "gfe"), val_images=5, checkpoints=2, tau=10.0)
    real_step = data_efficiency.Trainer.train_step

    def step(trainer):
        if trainer.config.method == "gfe" and trainer.images_seen >= 10:
            raise TrainingDiverged("gfe training diverged at 10 images: the training loss is nan; lower the lr")
        return real_step(trainer)

    monkeypatch.setattr(data_efficiency.Trainer, "train_step", step)
    with pytest.warns(RuntimeWarning, match="stopped mnist-gfe-seed0: gfe training diverged at 10 images"):
        result = run_data_efficiency(settings, out, device="cpu", progress=False, threads=1)
    assert list(result.stopped) == ["mnist-gfe-seed0"]
    assert [r["images_seen"] for r in result.rows if r["method"] == "ae"] == settings.schedule()  # it went on
    assert [r["images_seen"] for r in result.rows if r["method"] == "gfe"] == [5]
    run = json.loads((out / "run.json").read_text())
    assert run["stopped"] == result.stopped and run["completed"]
    assert "stopped mnist-gfe-seed0: gfe training diverged" in (out / "summary.txt").read_text()
    monkeypatch.setattr(data_efficiency.Trainer, "train_step", lambda trainer: pytest.fail("trained again"))
    again = run_data_efficiency(settings, out, device="cpu", progress=False, threads=1)
    assert again.stopped == result.stopped, "a stopped unit stays stopped: it would diverge the same way again"


def test_compare_curves_pairs_seeds_and_uses_the_seed_spread():
    from gfe_viz.experiments.summary import compare_curves

    def rows(method, losses):  # losses[seed] = [loss at 10 images, loss at 20 images]
        return [
            {
                "dataset": "mnist",
                "method": method,
                "seed": s,
                "images_seen": n,
                "val_loss": v,
                "train_loss": 0.0,
                "wall_time": 1.0,
                "encoder_nfe": 1.0,
            }
            for s, seq in losses.items()
            for n, v in zip((10, 20), seq)
        ]

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

PAIR = DataEfficiencySettings(
    images=100, batch_size=20, methods=("gfe",), seeds=(0, 1), val_images=10, checkpoints=3, tau=50.0
)


@pytest.fixture(scope="module")
def sequential_pair(tmp_path_factory):
    from gfe_viz.device import torch_threads

    out = tmp_path_factory.mktemp("sequential")
    with pytest.MonkeyPatch.context() as mp, torch_threads(1):  # one thread, as in the workers: equal rounding
        mp.setattr(data_efficiency, "load_images", _cached_load)
        return run_data_efficiency(PAIR, out, device="cpu", progress=False)


@pytest.mark.parametrize("executor, cluster", [("local", None), ("slurm", "local")], ids=["processes", "submitit"])
def test_parallel_units_give_the_sequential_results(sequential_pair, tmp_path, executor, cluster):
    parallel = run_data_efficiency(
        PAIR, tmp_path, device="cpu", progress=False, jobs=2, executor=executor, cluster=cluster
    )
    # the same rows; a worker process may round its validation loss differently in the last bits
    for rows in (parallel.rows, read_rows(tmp_path / "results.csv")):
        got, want = _without_wall_time(rows), _without_wall_time(sequential_pair.rows)
        assert [{k: v for k, v in r.items() if k != "val_loss"} for r in got] == [
            {k: v for k, v in r.items() if k != "val_loss"} for r in want
        ]
        assert [r["val_loss"] for r in got] == pytest.approx([r["val_loss"] for r in want], rel=1e-6)
    assert len(parallel.rows) == 2 * 3
    if executor == "slurm":
        assert any((tmp_path / "submitit").iterdir()), "submitit keeps its logs in the run folder"


def test_recent_rate_counts_from_the_last_checkpoint_before_now():
    from gfe_viz.experiments.data_efficiency import recent_rate

    history = History(images_seen=[10, 100], wall_time=[1.0, 20.0])
    assert recent_rate(history, 150, 30.0) == (pytest.approx(50 / 10.0), 100)  # since the checkpoint at 100
    assert recent_rate(history, 100, 20.0) == (pytest.approx(90 / 19.0), 10)  # at a checkpoint: the one before
    assert recent_rate(History(), 40, 8.0) == (pytest.approx(5.0), 0)  # no checkpoint yet: since the start
    assert recent_rate(History(), 0, 0.0) == (None, 0)


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
    assert status[0]["time_left"] == 0.0
    assert status[1]["rate"] > 0 and status[1]["time_left"] == pytest.approx(80 / status[1]["rate"])
    text = format_status(status)
    assert "mnist-gfe-seed1" in text and "20 / 100 images" in text and text.count("finished") == 1
    assert text.count("img/s since") == 1 and "of training left at that rate" in text
    assert sorted(p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()) == before  # nothing written
    with pytest.raises(FileNotFoundError, match="no run.json"):
        run_status(tmp_path / "nothing")


def test_a_unit_diverging_in_a_worker_process_is_stopped_and_reported(tmp_path):
    settings = DataEfficiencySettings(
        images=40, methods=("gfe",), seeds=(0, 1), val_images=5, checkpoints=2, tau=10.0, lr=1000.0
    )
    with pytest.warns(RuntimeWarning, match="stopped mnist-gfe-seed"):
        result = run_data_efficiency(settings, tmp_path, device="cpu", progress=False, jobs=2)
    assert sorted(result.stopped) == ["mnist-gfe-seed0", "mnist-gfe-seed1"]
    assert all(
        "training diverged at" in why and "lower the learning rate (lr=1000)" in why for why in result.stopped.values()
    )
    assert json.loads((tmp_path / "run.json").read_text())["stopped"] == result.stopped
