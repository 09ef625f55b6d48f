"""One training run on a schedule: when it saves, the rows it gives, and the folders it reads and writes."""

from __future__ import annotations

import os
import signal
import threading
from types import SimpleNamespace

import pytest

from gfe_viz.demo_models import cache_folder
from gfe_viz.experiments import training_run
from gfe_viz.experiments.results_io import FIELDS
from gfe_viz.experiments.training_run import checkpoint_schedule, history_rows, stop_on_signals, train_on_schedule
from gfe_viz.models import initial_model
from gfe_viz.training import History, TrainConfig, Trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def trainer(mnist_splits):
    model = initial_model("ae", 2, (1, 28, 28), 0)
    return Trainer(
        model, mnist_splits.train[:48], mnist_splits.val[:8], TrainConfig(method="ae", batch_size=8), device="cpu"
    )


def test_saves_come_at_checkpoints_and_between_them_only_when_due(trainer, monkeypatch):
    saves = []
    history = train_on_schedule(
        trainer, [8, 24], save=lambda t, checkpointed: saves.append((t.images_seen, checkpointed)), progress=False
    )
    assert saves == [(8, True), (24, True)] and history.images_seen == [8, 24]
    clock = iter(range(0, 1000, 10))  # each look at the clock: 10 s later
    monkeypatch.setattr(training_run, "time", SimpleNamespace(monotonic=lambda: next(clock)))
    saves.clear()
    train_on_schedule(
        trainer,
        [48],
        save=lambda t, checkpointed: saves.append((t.images_seen, checkpointed)),
        save_every=15,
        progress=False,
    )
    # steps at 32, 40, 48; a save resets the timer, so only every second step between checkpoints is due
    assert saves == [(40, False), (48, True)]


def test_a_stop_request_saves_the_step_in_progress_then_interrupts(trainer):
    saves, stop = [], threading.Event()

    def save(t, checkpointed):
        saves.append((t.images_seen, checkpointed))
        if t.images_seen == 8:
            stop.set()  # as a signal arriving during the step after the checkpoint would

    with pytest.raises(KeyboardInterrupt):
        train_on_schedule(trainer, [8, 48], save=save, progress=False, stop=stop)
    assert saves == [(8, True), (16, False)] and trainer.images_seen == 16


def test_a_stop_request_in_the_last_step_still_interrupts_after_its_save(trainer):
    saves, stop = [], threading.Event()
    with pytest.raises(KeyboardInterrupt):
        train_on_schedule(
            trainer, [8], save=lambda t, c: (saves.append(t.images_seen), stop.set()), progress=False, stop=stop
        )
    assert saves == [8]


def test_without_a_save_a_stop_request_interrupts_at_the_end_of_the_step(trainer):
    stop = threading.Event()
    stop.set()
    with pytest.raises(KeyboardInterrupt):
        train_on_schedule(trainer, [8, 48], progress=False, stop=stop)
    assert trainer.images_seen == 8


def test_sigterm_asks_to_stop_a_second_one_stops_at_once_and_the_old_handler_comes_back():
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals() as stop:
        assert not stop.is_set()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(5)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            threading.Event().wait(5)
    assert signal.getsignal(signal.SIGTERM) is before


def test_outside_the_main_thread_no_handler_is_installed():
    seen = []

    def in_thread():
        with stop_on_signals() as stop:
            seen.append((signal.getsignal(signal.SIGTERM), stop.is_set()))

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()
    assert seen == [(signal.getsignal(signal.SIGTERM), False)]


def test_without_a_save_the_run_only_checkpoints(trainer):
    assert train_on_schedule(trainer, [16, 32], progress=False).images_seen == [16, 32]
    assert trainer.images_seen == 32


def test_schedule_ends_at_whole_batches_and_merges_coinciding_points():
    assert checkpoint_schedule(images=12, batch_size=5, checkpoints=1) == [15]
    assert checkpoint_schedule(images=15, batch_size=5, checkpoints=6) == [5, 10, 15]
    points = checkpoint_schedule(images=10_000, batch_size=5, checkpoints=15)
    assert len(points) == 15 and points[0] == 5 and points[-1] == 10_000
    assert all(p % 5 == 0 for p in points) and all(
        b / a < c / b * 1.5 for a, b, c in zip(points, points[1:], points[2:])
    )


def test_rows_carry_the_unit_and_the_history_in_the_results_columns():
    history = History(
        images_seen=[5, 10], train_loss=[0.5, 0.4], val_loss=[0.6, 0.45], wall_time=[1.0, 2.0], encoder_nfe=[30.0, 31.5]
    )
    rows = history_rows(history, "mnist", "gfe", 3)
    assert [tuple(r) for r in rows] == [FIELDS, FIELDS]
    assert rows[1] == {
        "dataset": "mnist",
        "method": "gfe",
        "seed": 3,
        "images_seen": 10,
        "val_loss": 0.45,
        "train_loss": 0.4,
        "wall_time": 2.0,
        "encoder_nfe": 31.5,
    }


def test_the_demo_model_folder_follows_its_argument_then_its_variable_then_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GFE_CACHE_DIR", str(tmp_path / "models"))
    assert cache_folder(tmp_path / "given") == tmp_path / "given"
    assert cache_folder() == tmp_path / "models"
    monkeypatch.setenv("GFE_CACHE_DIR", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert cache_folder() == tmp_path / "cache" / "gfe-viz" / "models"
