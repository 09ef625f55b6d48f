"""The data-efficiency experiment: AE versus GFE on one stream of images, resumable.

For each (dataset, seed) every method starts from the same decoder weights, optimiser and image
stream. Each (dataset, method, seed) *unit* trains on ``images`` images and is evaluated on a fixed
held-out set (the first ``val_images`` test images) at log-spaced checkpoints of images seen. The
output folder holds:

- ``run.json``: the settings, for every invocation the command, package and torch versions,
  device and machine, and the units stopped because their training diverged;
- ``results.csv``: one row per unit and checkpoint (columns :data:`results_io.FIELDS`);
- ``checkpoints/<dataset>-<method>-seed<seed>.pt``: each unit's trainer state, with the unit, the
  settings' digest it belongs to and its reconstructions so far;
- ``reconstructions.pt``: the first :data:`RECONSTRUCTED_IMAGES` validation images and every unit's
  reconstructions of them at every checkpoint (uint8 grey levels, a few KB per checkpoint; read it
  with :func:`load_reconstructions`);
- ``summary.json``, ``summary.txt`` and ``data_efficiency.png`` once every unit has finished (or
  reached ``stop_at``).

A run may also be taken part of the way, ``stop_at`` images (a run option, not a setting): each
unit stops at its last checkpoint at or below it, ``run.json`` records ``paused_at`` instead of
``completed``, and the same command without it later continues the units to the end. So a long
run's first part is a finished result on the long run's checkpoint grid (e.g. 3 seeds to 100K of a
1M-image schedule).

Trainer states are saved at every checkpoint, at least every ``save_every`` seconds of work and at
the end of the step in which SIGTERM or Ctrl-C arrives (before the run stops), all files are written
atomically, and running again with the same settings continues each unit from
its last saved state with the results of an uninterrupted run (wall time aside). Refused, before
anything is written: a folder that holds other settings, that another run holds (its
:class:`~.folder_lock.FolderLock`), whose states belong to other units or settings, or whose
unfinished units were trained on another device or thread count (that would mix numerical
regimes). A damaged file is named with what to do about it. A unit whose training diverges
(:class:`~gfe_viz.training.TrainingDiverged`) stops with its message and the others go on.
"""

from __future__ import annotations

import os
import platform
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path

import torch

from .._checks import check_choice, check_positive, check_positive_int
from ..amd import ACCEPTANCE_MODES, AMD_MNIST, AMDOptions
from ..data import DATASETS, load_images
from ..device import resolve_device, threads_for_batch, torch_threads
from ..models import initial_model
from ..presets import ENCODERS, TRAINING_FAST
from ..training import MAX_SEED, METHODS, EncodeSettings, History, TrainConfig, Trainer, TrainingDiverged
from . import results_io
from .executors import EXECUTORS, run_jobs
from .folder_lock import LOCK_FILE, FolderLock
from .plots import plot_data_efficiency
from .summary import format_summary, summarise
from .training_run import checkpoint_schedule, history_rows, stop_on_signals
from .training_run import train_on_schedule as _train  # UnitJob looks it up here, so that a test can replace it

AMD_PRESETS = {"mnist": AMD_MNIST, "default": AMDOptions()}
IMAGE_SHAPE = (1, 28, 28)
FIGURE = "data_efficiency.png"
RECONSTRUCTIONS_FILE = "reconstructions.pt"
RECONSTRUCTED_IMAGES = 8  #: validation images (the first ones) whose reconstructions every checkpoint stores


def _setting(default, help: str, **option):
    """A settings field with its command-line form: ``help``, and optionally ``option`` (its name, when
    not ``--`` + the field name with dashes), ``choices`` (a validation table; a dict offers its keys)
    and ``minimum`` (of an integer, default 1); see :func:`gfe_viz.cli.add_settings_options`."""
    return field(default=default, metadata={"help": help, **option})


@dataclass(frozen=True)
class DataEfficiencySettings:
    """Everything that determines the results; a folder holds the results of one settings value.
    Each field's ``metadata`` gives its command-line option (``gfe-viz data-efficiency``)."""

    datasets: tuple[str, ...] = _setting(("mnist",), "one or more data sets", option="--dataset", choices=DATASETS)
    images: int = _setting(10_000, "training images each unit streams")
    batch_size: int = _setting(5, "training batch size")
    latent_dim: int = _setting(20, "latent dimension d")
    methods: tuple[str, ...] = _setting(
        ("ae", "gfe"), "gfe: approximate adjoint; gfe_full: full adjoint; ae: autoencoder", choices=METHODS
    )
    seeds: tuple[int, ...] = _setting((0,), "one run per seed; several give the mean and spread", minimum=0)
    val_images: int | None = _setting(
        None,
        "held-out set: this many images from the start of the test set; "
        "unset: sized to the run, min(1000, max(100, images/3))",
    )
    checkpoints: int | None = _setting(
        None, "number of log-spaced evaluation points; unset: sized to the run, min(15, max(4, images/200))"
    )
    tau: float = _setting(1e4, "GFE integration horizon")
    amd: str = _setting("mnist", "AMD step-control preset", choices=AMD_PRESETS)
    acceptance: str = _setting("per_sample", "AMD step acceptance", choices=ACCEPTANCE_MODES)
    order: int = _setting(1, "GFE flow order", choices=(1, 2))
    lr: float = _setting(5e-4, "RMSprop learning rate")
    encoder: str = _setting(
        "paper",
        "GFE's training encoder: paper (--amd, --acceptance, --order) or fast "
        "(gfe_viz.TRAINING_FAST with this --tau, about 10x fewer decoder evaluations); "
        "validation always encodes with the paper's settings",
        choices=ENCODERS,
    )

    def __post_init__(self):
        for name, choices in (("datasets", DATASETS), ("methods", METHODS)):
            values = getattr(self, name)
            if isinstance(values, str) or not values:
                raise ValueError(f"{name} must be a non-empty list of names from {sorted(choices)}, got {values!r}")
            for value in values:
                check_choice(name[:-1], value, choices)
            if len(set(values)) != len(values):
                raise ValueError(f"{name} must not repeat a name, got {list(values)}")
        if (
            isinstance(self.seeds, (str, int))
            or not self.seeds
            or len(set(self.seeds)) != len(self.seeds)
            or any(isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MAX_SEED for s in self.seeds)
        ):
            raise ValueError(
                f"seeds must be a non-empty list of distinct integers in [0, {MAX_SEED}], got {self.seeds!r}"
            )
        check_positive_int("images", self.images)
        if self.val_images is None:  # frozen dataclass: fill in the sizes once
            object.__setattr__(self, "val_images", min(1000, max(100, self.images // 3)))
        if self.checkpoints is None:
            object.__setattr__(self, "checkpoints", min(15, max(4, self.images // 200)))
        for name in ("batch_size", "latent_dim", "val_images", "checkpoints"):
            check_positive_int(name, getattr(self, name))
        if self.images < self.batch_size:
            raise ValueError(f"images must be >= batch_size={self.batch_size}, got {self.images}")
        for f in fields(self):  # amd, acceptance, order, encoder: one of their fields' choices
            if "choices" in f.metadata and not isinstance(f.default, tuple):
                check_choice(f.name, getattr(self, f.name), f.metadata["choices"])
        check_positive("tau", self.tau)
        check_positive("lr", self.lr)
        for method in self.methods:
            self.train_config(method, self.seeds[0])  # raises on an invalid combination (gfe_full with order 2)

    def train_config(self, method: str, seed: int) -> TrainConfig:
        paper = EncodeSettings(order=self.order, acceptance=self.acceptance, tau=self.tau, amd=AMD_PRESETS[self.amd])
        if self.encoder == "paper":
            return TrainConfig(method=method, batch_size=self.batch_size, lr=self.lr, seed=seed, encoding=paper)
        fast = EncodeSettings(tau=self.tau, **TRAINING_FAST)
        return TrainConfig(
            method=method, batch_size=self.batch_size, lr=self.lr, seed=seed, encoding=fast, eval_encoding=paper
        )

    def schedule(self) -> list[int]:
        """The checkpoints (:func:`~.training_run.checkpoint_schedule`); the last one ends the unit."""
        return checkpoint_schedule(self.images, self.batch_size, self.checkpoints)

    def to_dict(self) -> dict:
        """JSON-ready settings, with the AMD preset's values spelt out."""
        d = asdict(self)
        d.update(
            datasets=list(self.datasets),
            methods=list(self.methods),
            seeds=list(self.seeds),
            amd_options=asdict(AMD_PRESETS[self.amd]),
            train_images="load_images(dataset).train",
            val_set=f"first {self.val_images} test images",
            z0=self.train_config(self.methods[0], self.seeds[0]).encoding.z0,
        )
        if self.encoder == "fast":
            d["training_encoder"] = {**TRAINING_FAST, "amd": asdict(TRAINING_FAST["amd"])}
        return d

    def digest(self) -> str:
        """A short digest of :meth:`to_dict`, recorded in every saved state of the experiment."""
        return results_io.json_digest(self.to_dict())


@dataclass
class Unit:
    """One training run of the experiment: a method on a dataset with a seed."""

    dataset: str
    method: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.dataset}-{self.method}-seed{self.seed}"

    def to_dict(self) -> dict:
        return asdict(self)

    def rows(self, history: History) -> list[dict]:
        """The results rows of the unit's History (:func:`~.training_run.history_rows`)."""
        return history_rows(history, self.dataset, self.method, self.seed)


@dataclass
class _Images:
    """A dataset's training stream and held-out validation images."""

    train: torch.Tensor
    val: torch.Tensor


@dataclass
class RunOutput:
    """What :func:`run_data_efficiency` leaves behind: the folder, its rows and the summary."""

    folder: Path
    rows: list[dict]
    summary: dict
    stopped: dict[str, str]  #: unit name -> why its training was stopped (it diverged)


def run_data_efficiency(
    settings: DataEfficiencySettings,
    out: str | os.PathLike,
    data_root=None,
    device: str | torch.device | None = "auto",
    command: str | None = None,
    target: float | None = None,
    progress: bool = True,
    save_every: float = 300.0,
    on_save: Callable[[Unit, Trainer], None] | None = None,
    threads: int | None = None,
    jobs: int = 1,
    executor: str = "local",
    cluster: str | None = None,
    stop_at: int | None = None,
) -> RunOutput:
    """Run (or continue) the experiment into the folder ``out``; see the module docstring.

    Arguments:
        settings: the experiment; a folder that already holds other settings is refused.
        out: the output folder (created if needed).
        data_root: the data folder, default as in :func:`gfe_viz.data.data_root`.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        command: the command line to record in ``run.json``.
        target: the validation loss of the summary, default the AE's final loss.
        progress: show tqdm bars with ETA.
        save_every: seconds of work between saves of a unit's state besides its checkpoints.
        on_save: called after each save (e.g. to stop a test run part-way); in-process runs only.
        threads: torch CPU threads of an in-process run; None: :func:`gfe_viz.device.threads_for_batch`.
            Parallel units run on one thread each.
        jobs: how many units train at once, each in its own process on one torch thread.
        executor: ``"local"`` (processes on this machine) or ``"slurm"`` (a job array through
            submitit, logs in ``out/submitit``); see :mod:`gfe_viz.experiments.executors`.
        cluster: submitit's cluster name; ``"local"`` runs the slurm path on this machine.
        stop_at: train each unit only to its last checkpoint at or below this many images (see the
            module docstring); None: to the end of the schedule.

    Returns:
        A :class:`RunOutput`. Bad input, and every refusal listed in the module docstring, raises
        before anything is written.
    """
    check_positive("save_every", save_every)
    check_positive_int("jobs", jobs)
    check_choice("executor", executor, EXECUTORS)
    schedule = settings.schedule()
    end = _end_of_this_run(schedule, stop_at)
    if target is not None:
        check_positive("target", target)
    in_process = jobs == 1 and executor == "local"
    if on_save is not None and not in_process:
        raise ValueError(
            f"on_save needs the units to run in this process (jobs=1, executor='local'), "
            f"got jobs={jobs}, executor={executor!r}"
        )
    if threads is not None:
        check_positive_int("threads", threads)
        if not in_process and threads != 1:
            raise ValueError(
                f"threads applies to units run in this process (jobs=1, executor='local'); parallel "
                f"units run on one thread each, got threads={threads} with jobs={jobs}, "
                f"executor={executor!r}"
            )
    threads = threads or (threads_for_batch(settings.batch_size) if in_process else 1)
    device = resolve_device(device)
    folder = Path(out)
    _check_folder(folder, settings)  # a first look, so that no data is loaded for a folder that will be refused
    images = {d: _load(d, data_root, settings.val_images) for d in settings.datasets} if in_process else {}
    folder.mkdir(parents=True, exist_ok=True)
    with FolderLock(folder, command), torch_threads(threads):
        run = _check_folder(folder, settings)  # again: another run may have written it before we held the lock
        units = [Unit(d, m, s) for d in settings.datasets for s in settings.seeds for m in settings.methods]
        saved = {u.name: _saved_state(folder, u, settings.digest()) for u in units}
        rows = {u.name: _saved_rows(u, saved[u.name]) for u in units}
        stopped = dict(run["stopped"]) if run else {}
        todo = [
            u for u in units if u.name not in stopped and (not rows[u.name] or rows[u.name][-1]["images_seen"] < end)
        ]
        if run and todo:
            _check_same_regime(folder, run, device, threads)
        run = _record_invocation(folder, run, settings, command, device)
        (folder / "checkpoints").mkdir(exist_ok=True)
        from tqdm.auto import tqdm

        def write_results() -> None:
            results_io.write_rows(folder / "results.csv", [r for u in units for r in rows[u.name]])

        def saved_in_process(unit: Unit, trainer: Trainer) -> None:
            rows[unit.name] = unit.rows(trainer.history)
            write_results()
            if on_save is not None:
                on_save(unit, trainer)

        unit_jobs = [
            UnitJob(
                settings,
                folder,
                u,
                data_root,
                str(device),
                save_every,
                progress,
                [p for p in schedule if p <= end],
                on_save=saved_in_process if in_process else None,
                images=images.get(u.dataset),
                state=saved.pop(u.name) if in_process else None,
            )
            for u in todo
        ]
        bar = tqdm(total=len(todo), desc="units", unit="unit", disable=not progress or len(todo) < 2)

        def done(i: int, diverged: str | None) -> None:
            unit = todo[i]
            if not in_process:  # the unit saved in another process: its rows are in its state file
                rows[unit.name] = _saved_rows(unit, _saved_state(folder, unit, settings.digest()))
                write_results()
            if diverged is not None:  # its rows up to the last save stay; the other units go on
                stopped[unit.name] = f"{unit.name}: {diverged}"
                warnings.warn(f"stopped {stopped[unit.name]}", RuntimeWarning, stacklevel=3)
                run["stopped"] = stopped
                results_io.atomic_write_json(folder / "run.json", run)
            bar.update()

        try:
            run_jobs(unit_jobs, executor, jobs, folder=folder / "submitit", cluster=cluster, on_done=done)
        finally:
            bar.close()

        all_rows = [r for u in units for r in rows[u.name]]
        results_io.write_rows(folder / "results.csv", all_rows)
        summary = summarise(all_rows, target)
        results_io.atomic_write_json(folder / "summary.json", summary)
        results_io.atomic_write_text(
            folder / "summary.txt", format_summary(summary) + "".join(f"stopped {why}\n" for why in stopped.values())
        )
        if all_rows:  # none when every unit stopped before its first checkpoint
            plot_data_efficiency(all_rows, summary, folder / FIGURE)
        results_io.atomic_torch_save(
            _collect_reconstructions(folder, units, settings, data_root), folder / RECONSTRUCTIONS_FILE
        )
        if end == schedule[-1]:
            run["completed"] = _now()
            run.pop("paused_at", None)
        else:
            run["paused_at"] = {"images": end, "time": _now()}
        results_io.atomic_write_json(folder / "run.json", run)
    return RunOutput(folder=folder, rows=all_rows, summary=summary, stopped=stopped)


@dataclass
class UnitJob:
    """Trains one unit through ``schedule``, saving its state in the run folder; picklable,
    so that an executor can run it in another process (which then loads the data and the state).
    Returns None, or the message of :class:`~gfe_viz.training.TrainingDiverged` when it stopped."""

    settings: DataEfficiencySettings
    folder: Path
    unit: Unit
    data_root: str | None
    device: str
    save_every: float
    progress: bool
    schedule: list[int]  #: the checkpoints to train through: the settings' schedule, or its first part
    on_save: Callable[[Unit, Trainer], None] | None = None  #: after each save, in-process runs only
    images: _Images | None = None  #: preloaded by an in-process run
    state: dict | None = None  #: the unit's saved file, preloaded by an in-process run

    def __call__(self) -> str | None:
        unit, digest = self.unit, self.settings.digest()
        images = self.images or _load(unit.dataset, self.data_root, self.settings.val_images)
        state = self.state if self.state is not None else _saved_state(self.folder, unit, digest)
        trainer = _trainer(self.settings, unit, images, torch.device(self.device), state and state["trainer"])
        reconstructions = dict(state["reconstructions"]) if state else {}
        shown = images.val[:RECONSTRUCTED_IMAGES]

        def save(trainer: Trainer, checkpointed: bool) -> None:
            if checkpointed:
                reconstructions[trainer.images_seen] = _grey_levels(trainer.reconstruct(shown)[0])
            state = {
                "unit": unit.to_dict(),
                "settings_digest": digest,
                "trainer": trainer.state_dict(),
                "reconstructions": reconstructions,
            }
            results_io.atomic_torch_save(state, _state_path(self.folder, unit))
            if self.on_save is not None:
                self.on_save(unit, trainer)

        try:
            with stop_on_signals() as stop:  # SIGTERM (a cluster's time limit, kill) or Ctrl-C: save, then stop
                _train(trainer, self.schedule, save, self.save_every, self.progress, desc=unit.name, stop=stop)
        except TrainingDiverged as exc:
            return str(exc)
        return None


def _end_of_this_run(schedule: list[int], stop_at: int | None) -> int:
    """The checkpoint this invocation trains the units to: the schedule's last one, or the last one
    at or below ``stop_at``."""
    if stop_at is None:
        return schedule[-1]
    check_positive_int("stop_at", stop_at)
    if stop_at < schedule[0]:
        raise ValueError(f"stop_at must be at least the first checkpoint, {schedule[0]} images, got {stop_at}")
    return max(p for p in schedule if p <= stop_at)


def _trainer(settings: DataEfficiencySettings, unit: Unit, images: _Images, device, state: dict | None) -> Trainer:
    """A unit's trainer: the seed's shared initial decoder (inside the AE for "ae"), restored from
    ``state`` when the unit was saved before."""
    model = initial_model(unit.method, settings.latent_dim, IMAGE_SHAPE, unit.seed)
    trainer = Trainer(model, images.train, images.val, settings.train_config(unit.method, unit.seed), device)
    if state is not None:
        trainer.load_state_dict(state)
    return trainer


def run_status(out: str | os.PathLike) -> list[dict]:
    """How far each unit of the run in ``out`` is, read from its files; starts nothing.

    One dict per unit: ``unit``, ``images_seen``, ``images`` (the unit's end), ``val_loss`` at its
    last checkpoint (None before the first), ``train_time`` (seconds), ``finished``, ``rate``
    and ``rate_since`` (images/s of training since that many images seen, see :func:`recent_rate`;
    rate None before the first save) and ``time_left`` (seconds of training to the end at that rate,
    evaluations excluded; 0 when finished).
    """
    folder = Path(out)
    if not (folder / "run.json").is_file():
        raise FileNotFoundError(f"no run.json in {folder}: not a data-efficiency run folder")
    s = results_io.read_json(folder / "run.json", "restore it from a copy")["settings"]
    end = checkpoint_schedule(s["images"], s["batch_size"], s["checkpoints"])[-1]
    status = []
    for unit in (Unit(d, m, seed) for d in s["datasets"] for seed in s["seeds"] for m in s["methods"]):
        state = _saved_state(folder, unit, results_io.json_digest(s))
        state = state and state["trainer"]
        history = History(**state["history"]) if state else History()
        seen, train_time = (state["images_seen"], state["train_time"]) if state else (0, 0.0)
        rate, since = recent_rate(history, seen, train_time)
        status.append(
            {
                "unit": unit.name,
                "images_seen": seen,
                "images": end,
                "val_loss": history.val_loss[-1] if history.val_loss else None,
                "train_time": train_time,
                "finished": seen >= end,
                "rate": rate,
                "rate_since": since,
                "time_left": 0.0 if seen >= end else None if rate is None else (end - seen) / rate,
            }
        )
    return status


def recent_rate(history: History, images_seen: int, train_time: float) -> tuple[float | None, int]:
    """Images per second of training since the last checkpoint before ``images_seen`` (since the start
    if none), and that checkpoint's images: the rate that predicts the rest best, as a GFE image costs
    more evaluations the longer the decoder trains. The rate is None when no training time has passed."""
    marks = [(0, 0.0)] + [(n, t) for n, t in zip(history.images_seen, history.wall_time) if n < images_seen]
    images, time_then = marks[-1]
    return ((images_seen - images) / (train_time - time_then) if train_time > time_then else None), images


def format_status(status: list[dict]) -> str:
    """One line per unit, e.g. ``mnist-gfe-seed0  4,000 / 10,000 images (40%)  val 0.1234  2.0 min of
    training; 33.3 img/s since 2,304 images: 3.0 min of training left at that rate``."""
    width = max(len(s["unit"]) for s in status)
    lines = []
    for s in status:
        val = "val    -  " if s["val_loss"] is None else f"val {s['val_loss']:.4f}"
        if s["finished"]:
            ahead = "  finished"
        elif s["rate"] is None:
            ahead = ""
        else:
            ahead = (
                f"; {s['rate']:.1f} img/s since {s['rate_since']:,} images: "
                f"{_duration(s['time_left'])} of training left at that rate"
            )
        lines.append(
            f"{s['unit']:<{width}}  {s['images_seen']:>10,} / {s['images']:,} images "
            f"({100 * s['images_seen'] / s['images']:3.0f}%)  {val}  {s['train_time'] / 60:.1f} min of training" + ahead
        )
    return "\n".join(lines) + "\n"


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def _saved_rows(unit: Unit, state: dict | None) -> list[dict]:
    """The unit's results rows in its saved file (none before its first save)."""
    return unit.rows(History(**state["trainer"]["history"])) if state else []


def _saved_state(folder: Path, unit: Unit, digest: str) -> dict | None:
    """The unit's last saved file (on the CPU): ``trainer`` (its state) and ``reconstructions``
    (images seen -> uint8 images), or None; a file that is damaged or belongs to another unit or
    other settings raises :class:`~.results_io.DamagedFileError`."""
    path = _state_path(folder, unit)
    if not path.exists():
        return None
    fix = f"delete it to train {unit.name} again from the start, or put the right file back"
    state = results_io.load_torch_file(path, fix)
    owner, owner_digest = state.get("unit"), state.get("settings_digest")
    if owner != unit.to_dict() or owner_digest != digest:
        mine = (
            "no unit (an older gfe-viz?)" if owner is None else f"{Unit(**owner).name}, settings digest {owner_digest}"
        )
        raise results_io.DamagedFileError(
            f"{path} holds the state of {mine}, not of {unit.name} with this folder's "
            f"settings (digest {digest}): was it moved or copied? {fix}"
        )
    if "trainer" not in state or "reconstructions" not in state:
        raise results_io.DamagedFileError(f"{path} holds no trainer state or no reconstructions; {fix}")
    return state


def _grey_levels(probabilities: torch.Tensor) -> torch.Tensor:
    return (probabilities.detach().cpu() * 255).round().to(torch.uint8)


def _collect_reconstructions(folder: Path, units: list[Unit], settings: DataEfficiencySettings, data_root) -> dict:
    """The contents of ``reconstructions.pt``: per dataset the images shown, per unit its
    checkpoints and reconstructions (uint8, shape checkpoints x images x 1 x 28 x 28)."""
    shown = {d: _grey_levels(load_images(d, root=data_root).test[:RECONSTRUCTED_IMAGES]) for d in settings.datasets}
    per_unit = {}
    for unit in units:
        state = _saved_state(folder, unit, settings.digest())
        saved = sorted(state["reconstructions"].items()) if state else []
        per_unit[unit.name] = {
            **unit.to_dict(),
            "images_seen": [seen for seen, _ in saved],
            "reconstructions": torch.stack([r for _, r in saved])
            if saved
            else torch.zeros((0, *shown[unit.dataset].shape), dtype=torch.uint8),
        }
    return {"images": shown, "units": per_unit}


def load_reconstructions(folder: str | os.PathLike) -> dict:
    """``reconstructions.pt`` of a finished run folder: ``images`` (dataset -> uint8 images shown)
    and ``units`` (unit name -> dataset, method, seed, ``images_seen`` and ``reconstructions``)."""
    path = Path(folder) / RECONSTRUCTIONS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"no {RECONSTRUCTIONS_FILE} in {folder}: run gfe-viz data-efficiency to the end "
            f"(runs before gfe-viz stored reconstructions have none)"
        )
    return results_io.load_torch_file(path, "run the command again to rewrite it")


def _state_path(folder: Path, unit: Unit) -> Path:
    return folder / "checkpoints" / f"{unit.name}.pt"


def _load(dataset: str, data_root, val_images: int) -> _Images:
    splits = load_images(dataset, root=data_root)
    if val_images > splits.test.shape[0]:
        raise ValueError(f"val_images must be <= {splits.test.shape[0]} (the {dataset} test images), got {val_images}")
    return _Images(train=splits.train, val=splits.test[:val_images])


def _check_folder(folder: Path, settings: DataEfficiencySettings) -> dict | None:
    """The folder's run.json (None for a new or empty folder); refuse a folder that is a file,
    holds another run's settings or a damaged run.json, or holds files but no run.json."""
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"out must be a folder, got the file {folder}")
    run_file = folder / "run.json"
    if run_file.exists():
        fix = "restore it from a copy, or use another --out folder"
        run = results_io.read_json(run_file, fix)
        if (
            not isinstance(run, dict)
            or not isinstance(run.get("settings"), dict)
            or not isinstance(run.get("invocations"), list)
            or not run["invocations"]
        ):
            raise results_io.DamagedFileError(
                f"{run_file} is damaged: it does not hold a run's settings and invocations; {fix}"
            )
        run.setdefault("stopped", {})
        saved, wanted = run["settings"], settings.to_dict()
        if saved != wanted:
            diff = ", ".join(
                f"{k}: {saved.get(k)!r} there, {wanted.get(k)!r} now"
                for k in sorted(set(saved) | set(wanted))
                if saved.get(k) != wanted.get(k)
            )
            raise ValueError(
                f"out folder {folder} holds results of other settings ({diff}); "
                f"use another --out folder or the same settings to resume"
            )
        return run
    if folder.exists() and any(p.name != LOCK_FILE for p in folder.iterdir()):
        raise ValueError(f"out folder {folder} is not empty and has no run.json; expected an empty or new folder")
    return None


def _check_same_regime(folder: Path, run: dict, device: torch.device, threads: int) -> None:
    """Refuse to resume on another device, or on the CPU with another thread count, than the
    folder's last invocation: its results would mix two numerical regimes."""
    last = run["invocations"][-1]
    then_device, then_threads = torch.device(last.get("device", "cpu")), last.get("machine", {}).get("torch_threads")
    same_device = then_device.type == device.type and (then_device.index or 0) == (device.index or 0)
    if not same_device or (device.type == "cpu" and then_threads != threads):
        raise ValueError(
            f"out folder {folder} was trained with --device {last['device']} --threads {then_threads}, "
            f"this command has --device {device} --threads {threads}: resuming would mix two numerical "
            f"regimes in one run; resume with --device {last['device']} --threads {then_threads}, "
            f"or use another --out folder"
        )


def _record_invocation(
    folder: Path, run: dict | None, settings: DataEfficiencySettings, command: str | None, device
) -> dict:
    """Append this invocation to run.json (made for a new folder) and return its contents."""
    import gfe_viz

    run = run or {"settings": settings.to_dict(), "invocations": [], "stopped": {}}
    run["invocations"].append(
        {
            "command": command,
            "started": _now(),
            "package_version": gfe_viz.__version__,
            "torch_version": torch.__version__,
            "device": str(device),
            "machine": machine_description(device),
        }
    )
    run["completed"] = None
    run.pop("paused_at", None)  # set again if this invocation stops early too
    results_io.atomic_write_json(folder / "run.json", run)
    return run


def machine_description(device: torch.device) -> dict:
    """Platform, CPU model and count, torch threads and, on CUDA, the GPU name."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    machine = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        machine["gpu"] = torch.cuda.get_device_name(device)
    return machine


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
