"""The data-efficiency lesson: AE and GFE validation curves, and their reconstructions as training goes on.

The curves come from the result files of ``gfe-viz data-efficiency`` (a folder with
``results.csv`` and ``run.json``) when a results folder holds them, else from a live experiment
run in the notebook; :class:`CurveSource` says which, and the figure's title repeats it. The
reconstruction view shows the reconstructions that the committed runs stored at every checkpoint
(``reconstructions.pt``), or a live run's, made once for all its checkpoints.
"""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from .._checks import check_positive_int
from ..experiments.data_efficiency import RECONSTRUCTIONS_FILE, load_reconstructions
from ..experiments.plots import COLORS, LABELS, curve_label
from ..experiments.results_io import read_json, read_rows
from ..experiments.summary import seed_curve
from ..live_experiment import LiveExperiment
from .interactive import InteractiveView, interactive_view
from .plotting import compact, image_mosaic

RESULTS_FILE = "results.csv"
TITLE_WIDTH = 130  #: characters per title line


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

    ``root`` may be one run folder or hold several; a run is finished when its ``run.json`` has
    a ``completed`` time (a run still in progress is skipped). Each (dataset, method) takes its rows
    from the run that streamed that method the most images (ties: more seeds, then the first folder
    in sorted order), among the runs with the batch and latent size of the dataset's longest run:
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
    parts = [f"{dataset} {LABELS.get(method, method)}: {_describe_run(folder)}"
             for (dataset, method), folder in folders.items()]
    return CurveSource(rows=[r for _, _, rows in chosen.values() for r in rows], folders=folders,
                       description="result files, " + "; ".join(parts), live=False)


def curve_source(results: str | os.PathLike,
                 experiments: dict[str, LiveExperiment] | Callable[[], dict[str, LiveExperiment]]) -> CurveSource:
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
    return CurveSource(rows=rows, live=True,
                       description=f"live run in this notebook ({n_images:,} images, 1 seed, "
                                   f"{first.val_images.shape[0]} validation images); "
                                   f"no finished {RESULTS_FILE} under {results}")


def loss_curves_figure(rows: list[dict], title: str | None = None) -> go.Figure:
    """Validation loss against images seen (left) and training wall time (right), one row per dataset.

    Lines are seed means, shaded bands the seed range (when there are several seeds); both x axes
    are logarithmic. Traces per (dataset, method): band (if any), then mean line, left then right.
    """
    if not rows:
        raise ValueError("rows must hold at least one result row, got none")
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    titles = [f"{d}: {what}" for d in datasets for what in ("against images seen", "against training time")]
    figure = make_subplots(rows=len(datasets), cols=2, subplot_titles=titles, horizontal_spacing=0.08,
                           vertical_spacing=0.3 / len(datasets))
    for i, dataset in enumerate(datasets, start=1):
        for method in dict.fromkeys(r["method"] for r in rows if r["dataset"] == dataset):
            curve = seed_curve(rows, dataset, method)
            label = curve_label(method, len(curve.seeds))
            color = COLORS.get(method)
            for col, x in ((1, curve.images_seen), (2, curve.wall_time)):
                if len(curve.seeds) > 1:
                    figure.add_trace(go.Scatter(
                        x=compact(np.concatenate([x, x[::-1]])),
                        y=compact(np.concatenate([curve.high, curve.low[::-1]])), mode="lines", fill="toself",
                        opacity=0.2,
                        line=dict(width=0), fillcolor=color, name=f"{label}: seed range", legendgroup=method,
                        showlegend=False, hoverinfo="skip"), i, col)
                figure.add_trace(go.Scatter(
                    x=compact(x), y=compact(curve.mean), mode="lines+markers", name=label, legendgroup=method,
                    showlegend=i == 1 and col == 1, line=dict(color=color), marker=dict(size=5)), i, col)
        figure.update_xaxes(type="log", title_text="training images seen", row=i, col=1)
        figure.update_xaxes(type="log", title_text="training wall time (s, evaluation excluded)", row=i, col=2)
        figure.update_yaxes(title_text="validation loss (BCE per pixel)", row=i, col=1)
    lines = textwrap.wrap(title or "", TITLE_WIDTH)
    top = 70 + 16 * len(lines)  # room for the title lines above the subplot titles
    figure.update_layout(title=dict(text="<br>".join(lines), font=dict(size=12), yref="container", y=1,
                                    yanchor="top", pad=dict(t=12)),
                         width=980, height=330 * len(datasets) + top, margin=dict(t=top))
    return figure


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
        unit = min((u for u in stored["units"].values() if u["dataset"] == dataset and u["method"] == method),
                   key=lambda u: u["seed"])
        images = stored["images"][dataset][:n_show].float() / 255
        losses = {r["images_seen"]: r["val_loss"] for r in source.rows
                  if (r["dataset"], r["method"], r["seed"]) == (dataset, method, unit["seed"])}
        seen[method] = list(unit["images_seen"])
        recon[method] = unit["reconstructions"][:, :n_show].float() / 255
        val[method] = [losses[n] for n in seen[method]]
    return Reconstructions(dataset, images, seen, recon, val,
                           description="stored by the committed runs, lowest seed of each")


def live_reconstructions(experiment: LiveExperiment, n_show: int = 6) -> Reconstructions:
    """Every checkpoint's reconstructions of the live run's first ``n_show`` validation images,
    made once, so that the slider only looks them up."""
    check_positive_int("n_show", n_show)
    images = experiment.val_images[:n_show]
    recon = {method: torch.stack([run.reconstruct(images, n)[0] for n in experiment.checkpoints])
             for method, run in experiment.runs.items()}
    return Reconstructions(experiment.dataset, images, {m: list(experiment.checkpoints) for m in experiment.runs},
                           recon, {m: list(run.trainer.history.val_loss) for m, run in experiment.runs.items()},
                           description=f"live run ({experiment.checkpoints[-1]:,} images)")


def lesson_reconstructions(source: CurveSource, dataset: str, live: Callable[[str], LiveExperiment],
                           n_show: int = 6) -> Reconstructions:
    """The committed runs' stored reconstructions of ``dataset``, or a live run's (``live(dataset)``,
    called only then)."""
    return stored_reconstructions(source, dataset, n_show) or live_reconstructions(live(dataset), n_show)


def reconstruction_view(reconstructions: Reconstructions) -> InteractiveView:
    """Notebook view: the validation images and each method's reconstruction after ``images_seen``.

    The slider steps through every checkpoint of every method; a method shows its last checkpoint
    at or before the slider (its images seen are in the row label). Right: the validation curves
    with the shown checkpoints marked. The summary gives each method's images seen and validation
    loss at the shown checkpoint (the curve's value, over all validation images).
    """
    r = reconstructions
    options = sorted({n for seen in r.images_seen.values() for n in seen})

    def render(images_seen):
        shown = {m: r.at(m, images_seen) for m in r.images_seen}
        summary: dict = {"images_seen": images_seen}
        for m, i in shown.items():
            summary[f"{m}_images_seen"] = r.images_seen[m][i]
            summary[f"{m}_val_loss"] = r.val_loss[m][i]
        return _reconstruction_figure(r, shown, images_seen), summary

    style = {"description_width": "initial"}
    controls = {"images_seen": widgets.SelectionSlider(options=options, value=options[-1], description="images seen",
                                                       style=style, layout=widgets.Layout(width="600px"))}
    return interactive_view(render, controls)


def _reconstruction_figure(r: Reconstructions, shown: dict[str, int], images_seen: int) -> go.Figure:
    rows = {"original": r.images}
    for method, i in shown.items():
        rows[f"{LABELS.get(method, method)}<br>{r.images_seen[method][i]:,} img"] = r.reconstructions[method][i]
    n = len(rows)
    specs = [[{}, {"rowspan": n}]] + [[{}, None] for _ in range(n - 1)]
    figure = make_subplots(rows=n, cols=2, column_widths=[0.62, 0.38], specs=specs, horizontal_spacing=0.1,
                           vertical_spacing=0.04, subplot_titles=["", "validation loss"])
    for i, (name, images) in enumerate(rows.items(), start=1):
        figure.add_trace(image_mosaic(images, name=name.split("<br>")[0]), i, 1)
        anchor = figure.get_subplot(i, 1).xaxis.plotly_name.replace("axis", "")
        figure.update_xaxes(visible=False, row=i, col=1)
        figure.update_yaxes(title_text=name, showticklabels=False, showgrid=False, zeroline=False,
                            autorange="reversed", scaleanchor=anchor, constrain="domain", row=i, col=1)
    for method, i in shown.items():
        style, label = dict(color=COLORS.get(method)), LABELS.get(method, method)
        figure.add_trace(go.Scatter(x=r.images_seen[method], y=compact(r.val_loss[method]), mode="lines+markers",
                                    name=label, legendgroup=method, line=style), 1, 2)
        figure.add_trace(go.Scatter(x=[r.images_seen[method][i]], y=[r.val_loss[method][i]], mode="markers",
                                    name=f"{label} now", legendgroup=method, showlegend=False,
                                    marker=dict(size=14, symbol="circle-open", line=dict(width=3), **style)), 1, 2)
    figure.update_xaxes(type="log", title_text="training images seen", row=1, col=2)
    figure.update_layout(title=dict(text=f"{r.dataset}: the same validation images after {images_seen:,} training "
                                         f"images ({r.description})", font=dict(size=13)),
                         height=130 * n + 140, width=980, legend=dict(orientation="h", y=-0.12))
    return figure


def _finished(folder: Path) -> bool:
    run_file = folder / "run.json"
    return run_file.exists() and bool(read_json(run_file).get("completed"))


def _describe_run(folder: Path) -> str:
    commands = [i["command"] for i in read_json(folder / "run.json").get("invocations", []) if i.get("command")]
    return f"{folder}" + (f" ({commands[0]})" if commands else "")
