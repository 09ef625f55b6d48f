"""One training run on a checkpoint schedule, as the data-efficiency command and the live run of the
lessons both make it: the schedule, the trainer driven along it with saves at checkpoints and on a
timer, and the results rows its History gives.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

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
) -> History:
    """Train to the schedule's last checkpoint, evaluating at each one, then calling ``save(trainer, True)``;
    between checkpoints ``save(trainer, False)`` once ``save_every`` seconds passed since the last save
    (never, by default). Returns the trainer's History."""
    last_save = time.monotonic()

    def save_when_due(trainer: Trainer, checkpointed: bool) -> None:
        nonlocal last_save
        if checkpointed or time.monotonic() - last_save >= save_every:
            save(trainer, checkpointed)
            last_save = time.monotonic()

    return trainer.run(
        schedule[-1],
        checkpoints=schedule,
        progress=progress,
        on_step=save_when_due if save is not None else None,
        desc=desc,
    )


def history_rows(history: History, dataset: str, method: str, seed: int) -> list[dict]:
    """The results rows of one run: a dict per checkpoint with the columns :data:`~.results_io.FIELDS`."""
    rows = ({"dataset": dataset, "method": method, "seed": seed, **row} for row in history.rows())
    return [{k: row[k] for k in FIELDS} for row in rows]
