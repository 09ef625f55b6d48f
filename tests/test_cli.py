"""The gfe-viz command line: a tiny data-efficiency run, and bad input that exits cleanly writing nothing."""

import argparse
import dataclasses
import json
import os
import subprocess
import sys

import pytest
import torch

from gfe_viz.cli import main
from gfe_viz.experiments import DataEfficiencySettings

TINY = ["--images", "20", "--val-images", "5", "--tau", "10", "--checkpoints", "2", "--no-progress"]


def _fails(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["data-efficiency", *argv])
    assert exc.value.code == 2
    return capsys.readouterr().err


def test_tiny_run_records_the_command_and_prints_the_summary(tmp_path, capsys):
    out = tmp_path / "run"
    threads = torch.get_num_threads()
    try:
        assert (
            main(
                [
                    "data-efficiency",
                    "--out",
                    str(out),
                    "--dataset",
                    "mnist",
                    "--methods",
                    "ae",
                    "gfe",
                    "--threads",
                    "1",
                    *TINY,
                ]
            )
            == 0
        )
    finally:
        torch.set_num_threads(threads)
    printed = capsys.readouterr().out
    assert "mnist: target validation loss" in printed and "  gfe: final val loss" in printed
    run = json.loads((out / "run.json").read_text())
    assert run["invocations"][0]["command"].startswith(f"gfe-viz data-efficiency --out {out} --dataset mnist")
    assert run["settings"]["images"] == 20 and run["settings"]["tau"] == 10.0
    assert run["settings"]["methods"] == ["ae", "gfe"] and run["invocations"][0]["machine"]["torch_threads"] == 1
    assert {"results.csv", "summary.txt", "data_efficiency.png"} <= {p.name for p in out.iterdir()}

    before = (out / "run.json").read_text()
    err = _fails(["--out", str(out), *TINY[:1], "40", *TINY[2:]], capsys)
    assert "holds results of other settings (images: 20 there, 40 now)" in err
    assert (out / "run.json").read_text() == before


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--dataset", "cifar"], "argument --dataset: invalid choice: 'cifar'"),
        (["--methods", "vae"], "argument --methods: invalid choice: 'vae'"),
        (["--images", "0"], "argument --images: must be a positive integer, got '0'"),
        (["--images", "-5"], "argument --images: must be a positive integer, got '-5'"),
        (["--tau", "-1"], "argument --tau: must be a finite number > 0, got '-1'"),
        (["--seeds", "x"], "argument --seeds: must be an integer >= 0, got 'x'"),
        (["--methods", "gfe_full", "--order", "2"], "method 'gfe_full' needs encoding.order=1, got 2"),
        (["--images", "3", "--batch-size", "5"], "images must be >= batch_size=5, got 3"),
        (["--val-images", "20000"], "val_images must be <= 10000 (the mnist test images), got 20000"),
        (
            ["--seeds", "0", "99999999999999999999"],
            "seeds must be a non-empty list of distinct integers in [0, 4294967295], got (0, 99999999999999999999)",
        ),
        (["--device", "mps"], "MPS (Apple GPUs) is not available"),
        (["--device", "tpu"], "device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got 'tpu'"),
        (["--stop-at", "2"], "stop_at must be at least the first checkpoint, 5 images, got 2"),
    ],
)
def test_bad_input_exits_with_a_clear_error_and_writes_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "run"
    err = _fails(["--out", str(out), *argv], capsys)
    assert message in err
    assert not out.exists()


def test_missing_data_offline_names_the_folder_and_writes_nothing(tmp_path, capsys):
    out, empty = tmp_path / "run", tmp_path / "no-data"
    empty.mkdir()
    err = _fails(["--out", str(out), "--data-root", str(empty), *TINY], capsys)
    assert f"MNIST files not found under {empty / 'MNIST' / 'raw'}" in err
    assert not out.exists() and list(empty.iterdir()) == []


def test_a_cuda_index_beyond_the_gpus_is_refused_before_anything_is_written(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    err = _fails(["--out", str(tmp_path / "run"), "--device", "cuda:2", *TINY], capsys)
    assert "device 'cuda:2' was requested but this machine has 2 CUDA device(s): expected cuda:0 to cuda:1" in err
    assert not (tmp_path / "run").exists()


def test_without_a_data_folder_the_error_says_where_and_how(tmp_path, capsys, monkeypatch):
    import torchvision

    def offline(self):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", offline)
    monkeypatch.delenv("GFE_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    err = _fails(["--out", str(tmp_path / "run"), *TINY], capsys)
    assert f"MNIST files not found under {tmp_path / 'cache' / 'gfe-viz' / 'data' / 'MNIST' / 'raw'}" in err
    assert "GFE_DATA_DIR (or --data-root)" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_stop_at_trains_part_of_the_run_and_the_same_command_without_it_finishes(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["data-efficiency", "--out", str(out), "--methods", "ae", *TINY, "--stop-at", "10"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["paused_at"]["images"] == 5 and run["completed"] is None
    assert main(["data-efficiency", "--out", str(out), "--methods", "ae", *TINY]) == 0
    assert json.loads((out / "run.json").read_text())["completed"] is not None


def test_ctrl_c_says_how_to_resume_and_exits_130(tmp_path, capsys, monkeypatch):
    from gfe_viz.experiments import data_efficiency

    out = tmp_path / "run"
    real_train = data_efficiency._train

    def interrupted(trainer, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(data_efficiency, "_train", interrupted)
    assert main(["data-efficiency", "--out", str(out), *TINY]) == 130
    assert capsys.readouterr().err.strip().endswith("interrupted; run the same command to resume")
    assert not (out / ".lock").exists()
    monkeypatch.setattr(data_efficiency, "_train", real_train)
    assert main(["data-efficiency", "--out", str(out), *TINY]) == 0  # the same command resumes


def test_a_stopped_unit_gives_status_1(tmp_path, capsys, monkeypatch):
    from gfe_viz.experiments import data_efficiency
    from gfe_viz.training import TrainingDiverged

    def diverge(trainer, *args, **kwargs):
        raise TrainingDiverged("ae training diverged at 5 images: the training loss is nan; lower the learning rate")

    monkeypatch.setattr(data_efficiency, "_train", diverge)
    with pytest.warns(RuntimeWarning, match="stopped mnist-ae-seed0"):
        status = main(["data-efficiency", "--out", str(tmp_path / "run"), "--methods", "ae", *TINY])
    assert status == 1
    assert "stopped mnist-ae-seed0: ae training diverged at 5 images" in capsys.readouterr().out


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_device_is_refused(tmp_path, capsys):
    err = _fails(["--out", str(tmp_path / "run"), "--device", "cuda", *TINY], capsys)
    assert "CUDA is not available" in err and not (tmp_path / "run").exists()


def test_python_dash_m_runs_the_same_command_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "gfe_viz", "data-efficiency", "--out", str(tmp_path / "run"), "--images", "0"],
        capture_output=True,
        text=True,
        env=os.environ,
    )
    assert done.returncode == 2 and "must be a positive integer, got '0'" in done.stderr
    assert done.stderr.startswith("usage: gfe-viz data-efficiency")


def test_lessons_open_jupyterlab_with_allow_root_only_as_root(tmp_path, monkeypatch):
    from gfe_viz import cli

    assert "--allow-root" in cli.jupyterlab_argv("a.ipynb", [], as_root=True)
    assert cli.jupyterlab_argv("a.ipynb", ["--port", "9999"], as_root=False)[1:] == [
        "-m",
        "jupyterlab",
        "a.ipynb",
        "--port",
        "9999",
    ]
    notebook = tmp_path / "lesson.ipynb"
    notebook.write_text("{}")
    started = []
    monkeypatch.setattr(cli.os, "execv", lambda path, argv: started.append(argv))
    monkeypatch.setattr(cli.os, "geteuid", lambda: 0)
    cli.main(["lessons", str(notebook), "--no-browser"])
    assert started == [[sys.executable, "-m", "jupyterlab", str(notebook), "--allow-root", "--no-browser"]]


def test_lessons_outside_the_repository_say_where_to_run_them(tmp_path, monkeypatch, capsys):
    from gfe_viz import cli

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        cli.main(["lessons"])
    assert exc.value.code == 2
    assert (
        "notebooks/00_start_here.ipynb' not found: run gfe-viz lessons from the repository root"
        in capsys.readouterr().err
    )
    with pytest.raises(SystemExit):
        cli.main(["data-efficiency", "--out", str(tmp_path / "run"), "--no-such-option"])
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err


def _data_efficiency_parser():
    from gfe_viz.cli import build_parser

    (commands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return commands.choices["data-efficiency"]


def test_every_setting_has_one_option_with_its_default_and_help():
    parser = _data_efficiency_parser()
    for f in dataclasses.fields(DataEfficiencySettings):
        (action,) = [a for a in parser._actions if a.dest == f.name]
        assert action.default == f.default and action.help, f.name
    assert [a.option_strings for a in parser._actions if a.dest == "datasets"] == [["--dataset"]]


def test_a_full_command_line_gives_back_its_settings():
    from gfe_viz.cli import settings_from_args

    wanted = DataEfficiencySettings(
        datasets=("fashionmnist", "mnist"),
        images=300,
        batch_size=6,
        latent_dim=3,
        methods=("gfe",),
        seeds=(0, 4),
        val_images=50,
        checkpoints=5,
        tau=123.5,
        amd="default",
        acceptance="batch",
        order=2,
        lr=0.002,
        encoder="fast",
    )
    argv = [
        "--dataset",
        "fashionmnist",
        "mnist",
        "--images",
        "300",
        "--batch-size",
        "6",
        "--latent-dim",
        "3",
        "--methods",
        "gfe",
        "--seeds",
        "0",
        "4",
        "--val-images",
        "50",
        "--checkpoints",
        "5",
        "--tau",
        "123.5",
        "--amd",
        "default",
        "--acceptance",
        "batch",
        "--order",
        "2",
        "--lr",
        "0.002",
        "--encoder",
        "fast",
    ]
    assert all(getattr(wanted, f.name) != f.default for f in dataclasses.fields(DataEfficiencySettings))
    assert settings_from_args(_data_efficiency_parser().parse_args(["--out", "x", *argv])) == wanted
    assert settings_from_args(_data_efficiency_parser().parse_args(["--out", "x"])) == DataEfficiencySettings()
