"""One training run on a checkpoint schedule, as the data-efficiency command and the live run of the
lessons both make it: the schedule, the trainer driven along it with saves at checkpoints, on a
timer and when asked to stop, and the results rows its History gives.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..training import History, Trainer
from .results_io import FIELDS


def checkpoint_schedule(images: int, batch_size: int, checkpoints: int) -> list[int]:
    """``checkpoints`` log-spaced image counts from one batch to ``images``, each rounded up to whole
    batches (so fewer when they coincide); the last one, ``images`` in whole batches, ends the run."""
    end = math.ceil(images / batch_size) * batch_size
    if checkpoints == 1:
        return [end]
    ratio = end / batch_size
    points = {
        math.ceil(batch_size * ratio ** (i / (checkpoints - 1)) / batch_size) * batch_size for i in range(checkpoints)
    }
    return sorted(min(p, end) for p in points)


def train_on_schedule(
    trainer: Trainer,
    schedule: list[int],
    save: Callable[[Trainer, bool], None] | None = None,
    save_every: float = math.inf,
    progress: bool = True,
    desc: str | None = None,
    stop: threading.Event | None = None,
) -> History:
    """Train to the schedule's last checkpoint, evaluating at each one, then calling ``save(trainer, True)``;
    between checkpoints ``save(trainer, False)`` once ``save_every`` seconds passed since the last save
    (never, by default). Returns the trainer's History.

    Once ``stop`` is set (see :func:`stop_on_signals`), the run saves (if it has a ``save``) at the
    end of the step it is in and raises KeyboardInterrupt, so that no finished step is lost."""
    last_save = time.monotonic()

    def after_step(trainer: Trainer, checkpointed: bool) -> None:
        nonlocal last_save
        stopping = stop is not None and stop.is_set()
        if save is not None and (checkpointed or stopping or time.monotonic() - last_save >= save_every):
            save(trainer, checkpointed)
            last_save = time.monotonic()
        if stopping:
            raise KeyboardInterrupt

    history = trainer.run(
        schedule[-1],
        checkpoints=schedule,
        progress=progress,
        on_step=after_step,
        desc=desc,
    )
    if stop is not None and stop.is_set():  # asked after the last step's save: the run is whole, stop anyway
        raise KeyboardInterrupt
    return history


@contextmanager
def stop_on_signals(signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)) -> Iterator[threading.Event]:
    """Within the block, the first of ``signals`` sets the event it yields instead of ending the
    process mid-step (pass it to :func:`train_on_schedule`, which then saves and stops); a second
    one raises KeyboardInterrupt at once. The previous handlers come back on leaving. Python
    handles signals only in the main thread: elsewhere the event is never set."""
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested
        return

    def handler(signum: int, frame) -> None:
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()
        name = signal.Signals(signum).name
        os.write(2, f"\n{name}: saving at the end of this step, then stopping ({name} again: stop at once)\n".encode())

    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield requested
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def history_rows(history: History, dataset: str, method: str, seed: int) -> list[dict]:
    """The results rows of one run: a dict per checkpoint with the columns :data:`~.results_io.FIELDS`."""
    rows = ({"dataset": dataset, "method": method, "seed": seed, **row} for row in history.rows())
    return [{k: row[k] for k in FIELDS} for row in rows]
