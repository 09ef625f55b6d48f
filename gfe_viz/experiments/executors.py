"""Running the units of an experiment: in this process, as local processes, or as a Slurm job array.

A unit job is a picklable callable that trains one unit to its end, saving its own state file
as it goes, and returns a small picklable value (e.g. why it stopped early, or None); the caller
rebuilds the results from the state files. So a unit
killed by a time limit, a pre-emption or Ctrl-C continues from its last saved state when the
same command runs again, whichever executor ran it.

- ``"local"`` with ``jobs=1``: one unit after the other in this process;
- ``"local"`` with ``jobs=N``: N worker processes, each on one torch thread;
- ``"slurm"``: one array task per unit through ``submitit`` (``pip install gfe-viz[cluster]``),
  at most ``jobs`` at once; ``cluster="local"`` runs the same path as local subprocesses
  (submitit's local executor), which the tests use.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

EXECUTORS = ("local", "slurm")


def _one_thread_worker() -> None:
    import torch

    torch.set_num_threads(1)


def run_jobs(
    jobs: Sequence[Callable[[], None]],
    executor: str = "local",
    n_parallel: int = 1,
    folder: str | Path | None = None,
    cluster: str | None = None,
    timeout_min: int = 24 * 60,
    on_done: Callable[[int, object], None] | None = None,
) -> None:
    """Run every job; ``on_done(i, value)`` is called in this process as job ``i`` finishes,
    with what the job returned.

    ``folder`` holds submitit's logs (slurm only). A failed job raises here once the others are
    done or cancelled, naming the job.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {list(EXECUTORS)}, got {executor!r}")
    if executor == "local" and n_parallel == 1:
        for i, job in enumerate(jobs):
            value = job()
            if on_done is not None:
                on_done(i, value)
        return
    if executor == "local":
        context = multiprocessing.get_context("spawn")  # no fork of a process that holds torch threads
        with ProcessPoolExecutor(max_workers=n_parallel, mp_context=context, initializer=_one_thread_worker) as pool:
            futures = {pool.submit(job): i for i, job in enumerate(jobs)}
            for future in as_completed(futures):
                value = future.result()
                if on_done is not None:
                    on_done(futures[future], value)
        return
    try:
        import submitit
    except ImportError as exc:
        raise RuntimeError("executor 'slurm' needs submitit: pip install 'gfe-viz[cluster]'") from exc
    if folder is None:
        raise ValueError("executor 'slurm' needs a folder for submitit's logs")
    ex = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    ex.update_parameters(timeout_min=timeout_min, cpus_per_task=1, slurm_array_parallelism=n_parallel)
    submitted = ex.submit_array(list(jobs))
    for i, job in enumerate(submitted):
        value = job.result()
        if on_done is not None:
            on_done(i, value)
