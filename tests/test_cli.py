"""The gfe-viz command line: a tiny data-efficiency run, and bad input that exits cleanly writing nothing."""

import json
import os
import subprocess
import sys

import pytest
import torch

from gfe_viz.cli import main

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
        assert main(["data-efficiency", "--out", str(out), "--dataset", "mnist", "--methods", "ae", "gfe",
                     "--threads", "1", *TINY]) == 0
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


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "cifar"], "argument --dataset: invalid choice: 'cifar'"),
    (["--methods", "vae"], "argument --methods: invalid choice: 'vae'"),
    (["--images", "0"], "argument --images: must be a positive integer, got '0'"),
    (["--images", "-5"], "argument --images: must be a positive integer, got '-5'"),
    (["--tau", "-1"], "argument --tau: must be a finite number > 0, got '-1'"),
    (["--seeds", "x"], "argument --seeds: must be an integer >= 0, got 'x'"),
    (["--methods", "gfe_full", "--order", "2"], "method 'gfe_full' needs encoding.order=1, got 2"),
    (["--images", "3", "--batch-size", "5"], "images must be >= batch_size=5, got 3"),
    (["--val-images", "20000"], "val_images must be <= 10000 (the mnist test images), got 20000"),
])
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


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_device_is_refused(tmp_path, capsys):
    err = _fails(["--out", str(tmp_path / "run"), "--device", "cuda", *TINY], capsys)
    assert "CUDA is not available" in err and not (tmp_path / "run").exists()


def test_python_dash_m_runs_the_same_command_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "gfe_viz", "data-efficiency", "--out", str(tmp_path / "run"),
                           "--images", "0"], capture_output=True, text=True, env=os.environ)
    assert done.returncode == 2 and "must be a positive integer, got '0'" in done.stderr
    assert done.stderr.startswith("usage: gfe-viz data-efficiency")
