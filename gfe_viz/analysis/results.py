"""Results discovery for the data-efficiency lesson: the curves of the committed runs of
``gfe-viz data-efficiency`` (a folder with ``results.csv`` and ``run.json``) when a results folder
holds them, else a live experiment's; :class:`CurveSource` says which. The reconstructions are
those the committed runs stored at every checkpoint (``reconstructions.pt``), or a live run's,
made once for all its checkpoints.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .._checks import check_positive_int
from ..experiments.data_efficiency import RECONSTRUCTIONS_FILE, load_reconstructions
from ..experiments.results_io import read_json, read_rows
from ..live_experiment import LiveExperiment
from ..style import METHOD_LABELS

RESULTS_FILE = "results.csv"


@dataclass
class CurveSource:
    """Result rows (the columns of ``results.csv``) and a sentence saying where they come from;
    ``folders`` names the run folder of each (dataset, method) for committed results."""

    rows: list[dict]
    description: str
    live: bool
    folders: dict[tuple[str, str], Path] = field(default_factory=dict)


def committed_results(root: str | os.PathLike = "results") -> CurveSource | None:
    """The rows of the finished runs under ``root``, or None when it holds none.

    ``root`` may be one run folder or hold several; a run is finished when its ``run.json`` has a
    ``completed`` time or a ``paused_at`` (stopped by ``--stop-at``, its rows final to that point); a
    run still in progress is skipped. Each (dataset, method) takes its rows from the run that streamed
    that method the most images (ties: more seeds, then the first folder in sorted order), among the
    runs with the batch and latent size of the dataset's longest run:
    one curve never mixes runs, and one figure never mixes batch or latent sizes.
    """
    candidates: dict[str, list[tuple[str, tuple[int, int], Path, tuple, list[dict]]]] = {}
    for path in sorted(Path(root).glob(f"**/{RESULTS_FILE}")):
        if not _finished(path.parent):
            continue
        settings = read_json(path.parent / "run.json").get("settings", {})
        shape = (settings.get("batch_size"), settings.get("latent_dim"))
        rows = read_rows(path)
        for dataset, method in dict.fromkeys((r["dataset"], r["method"]) for r in rows):
            mine = [r for r in rows if r["dataset"] == dataset and r["method"] == method]
            reach = (max(r["images_seen"] for r in mine), len({r["seed"] for r in mine}))
            candidates.setdefault(dataset, []).append((method, reach, path.parent, shape, mine))
    if not candidates:
        return None
    chosen: dict[tuple[str, str], tuple[tuple[int, int], Path, list[dict]]] = {}
    for dataset, runs in candidates.items():
        longest_shape = max(runs, key=lambda run: run[1][0])[3]  # max keeps the first of equals
        for method, reach, folder, shape, mine in runs:
            if shape == longest_shape and ((dataset, method) not in chosen or reach > chosen[dataset, method][0]):
                chosen[dataset, method] = (reach, folder, mine)
    folders = {key: folder for key, (_, folder, _) in chosen.items()}
    parts = [
        f"{dataset} {METHOD_LABELS.get(method, method)}: {_describe_run(folder)}"
        for (dataset, method), folder in folders.items()
    ]
    return CurveSource(
        rows=[r for _, _, rows in chosen.values() for r in rows],
        folders=folders,
        description="result files, " + "; ".join(parts),
        live=False,
    )


def curve_source(
    results: str | os.PathLike, experiments: dict[str, LiveExperiment] | Callable[[], dict[str, LiveExperiment]]
) -> CurveSource:
    """The committed results under ``results`` when there are any, else the rows of ``experiments``
    (a callable is called only then, so that a live run is made only when it is needed)."""
    found = committed_results(results)
    if found is not None:
        return found
    experiments = experiments() if callable(experiments) else experiments
    if not experiments:
        raise ValueError(f"no {RESULTS_FILE} under {str(results)!r} and no live experiments to fall back on")
    rows = [r for e in experiments.values() for r in e.rows()]
    first = next(iter(experiments.values()))
    n_images = first.checkpoints[-1]
    return CurveSource(
        rows=rows,
        live=True,
        description=f"live run in this notebook ({n_images:,} images, 1 seed, "
        f"{first.val_images.shape[0]} validation images); "
        f"no finished {RESULTS_FILE} under {results}",
    )


@dataclass
class Reconstructions:
    """One dataset's validation images and, per method, its reconstructions of them at each
    checkpoint with the validation curve they lie on; what :func:`reconstruction_view` shows."""

    dataset: str
    images: torch.Tensor  #: (K, 1, H, W) in [0, 1]
    images_seen: dict[str, list[int]]  #: method -> checkpoints
    reconstructions: dict[str, torch.Tensor]  #: method -> (checkpoints, K, 1, H, W) in [0, 1]
    val_loss: dict[str, list[float]]  #: method -> validation loss at each checkpoint
    description: str

    def at(self, method: str, images_seen: int) -> int:
        """Index of ``method``'s last checkpoint at or before ``images_seen`` (its first, if none)."""
        return max(0, int(np.searchsorted(self.images_seen[method], images_seen, side="right")) - 1)


def stored_reconstructions(source: CurveSource, dataset: str, n_show: int = 6) -> Reconstructions | None:
    """The reconstructions stored by the committed runs of ``dataset`` in ``source`` (the lowest
    seed of each method's run), or None when a run has none (runs from before gfe-viz stored them)."""
    check_positive_int("n_show", n_show)
    folders = {method: folder for (d, method), folder in source.folders.items() if d == dataset}
    if not folders or not all((folder / RECONSTRUCTIONS_FILE).is_file() for folder in folders.values()):
        return None
    images, seen, recon, val = None, {}, {}, {}
    for method, folder in folders.items():
        stored = load_reconstructions(folder)
        unit = min(
            (u for u in stored["units"].values() if u["dataset"] == dataset and u["method"] == method),
            key=lambda u: u["seed"],
        )
        images = stored["images"][dataset][:n_show].float() / 255
        losses = {
            r["images_seen"]: r["val_loss"]
            for r in source.rows
            if (r["dataset"], r["method"], r["seed"]) == (dataset, method, unit["seed"])
        }
        seen[method] = list(unit["images_seen"])
        recon[method] = unit["reconstructions"][:, :n_show].float() / 255
        val[method] = [losses[n] for n in seen[method]]
    return Reconstructions(
        dataset, images, seen, recon, val, description="stored by the committed runs, lowest seed of each"
    )


def live_reconstructions(experiment: LiveExperiment, n_show: int = 6) -> Reconstructions:
    """Every checkpoint's reconstructions of the live run's first ``n_show`` validation images,
    made once, so that the slider only looks them up."""
    check_positive_int("n_show", n_show)
    images = experiment.val_images[:n_show]
    recon = {
        method: torch.stack([run.reconstruct(images, n)[0] for n in experiment.checkpoints])
        for method, run in experiment.runs.items()
    }
    return Reconstructions(
        experiment.dataset,
        images,
        {m: list(experiment.checkpoints) for m in experiment.runs},
        recon,
        {m: list(run.trainer.history.val_loss) for m, run in experiment.runs.items()},
        description=f"live run ({experiment.checkpoints[-1]:,} images)",
    )


def lesson_reconstructions(
    source: CurveSource, dataset: str, live: Callable[[str], LiveExperiment], n_show: int = 6
) -> Reconstructions:
    """The committed runs' stored reconstructions of ``dataset``, or a live run's (``live(dataset)``,
    called only then)."""
    return stored_reconstructions(source, dataset, n_show) or live_reconstructions(live(dataset), n_show)


def _finished(folder: Path) -> bool:
    """Whether the run in ``folder`` has completed, or stopped where ``--stop-at`` told it to (its rows
    are final to that point, and running on only adds rows)."""
    run_file = folder / "run.json"
    if not run_file.exists():
        return False
    run = read_json(run_file)
    return bool(run.get("completed") or run.get("paused_at"))


def _describe_run(folder: Path) -> str:
    commands = [i["command"] for i in read_json(folder / "run.json").get("invocations", []) if i.get("command")]
    return f"{folder}" + (f" ({commands[0]})" if commands else "")
