"""The data-efficiency lesson: AE and GFE validation curves, and their reconstructions as training goes on.

The curves come from the result files of ``gfe-viz data-efficiency`` (a folder with
``results.csv`` and ``run.json``) when a results folder holds them, else from a live experiment
run in the notebook; :class:`CurveSource` says which, and the figure's title repeats it. The
reconstruction view always needs the models themselves, so it shows a live experiment's
snapshots.
"""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from pathlib import Path

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from .._checks import check_positive_int
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
    """Result rows (the columns of ``results.csv``) and a sentence saying where they come from."""

    rows: list[dict]
    description: str
    live: bool


def committed_results(root: str | os.PathLike = "results") -> CurveSource | None:
    """The rows of the finished runs under ``root``, or None when it holds none.

    ``root`` may be one run folder or hold several; a run is finished when its ``run.json`` has
    a ``completed`` time (a run still in progress is skipped). Each dataset's rows come from the
    run that compares the most methods, then streamed the most images (ties: the first folder in
    sorted order), so runs of different settings are never mixed in one curve.
    """
    files = sorted(Path(root).glob(f"**/{RESULTS_FILE}"))
    best: dict[str, tuple[tuple[int, int], Path, list[dict]]] = {}
    for path in files:
        if not _finished(path.parent):
            continue
        rows = read_rows(path)
        for dataset in dict.fromkeys(r["dataset"] for r in rows):
            mine = [r for r in rows if r["dataset"] == dataset]
            reach = (len({r["method"] for r in mine}), max(r["images_seen"] for r in mine))
            if dataset not in best or reach > best[dataset][0]:
                best[dataset] = (reach, path.parent, mine)
    if not best:
        return None
    parts = [f"{dataset}: {_describe_run(folder)}" for dataset, (_, folder, _) in best.items()]
    return CurveSource(rows=[r for _, _, rows in best.values() for r in rows],
                       description="result files, " + "; ".join(parts), live=False)


def curve_source(results: str | os.PathLike, experiments: dict[str, LiveExperiment]) -> CurveSource:
    """The committed results under ``results`` when there are any, else the rows of ``experiments``."""
    found = committed_results(results)
    if found is not None:
        return found
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


def reconstruction_view(experiments: dict[str, LiveExperiment], n_show: int = 6) -> InteractiveView:
    """Notebook view: the same validation images and each method's reconstruction at a checkpoint.

    Controls: ``dataset`` and ``images_seen`` (the experiments' common checkpoints). Left: one
    row of images per method under the originals; right: the live run's validation curves with
    the checkpoint marked. The summary gives each method's mean loss on the images shown.
    """
    if not experiments:
        raise ValueError("experiments must map at least one dataset name to a LiveExperiment, got none")
    check_positive_int("n_show", n_show)
    checkpoints = {tuple(e.checkpoints) for e in experiments.values()}
    if len(checkpoints) != 1:
        raise ValueError(f"experiments must share their checkpoints, got {sorted(checkpoints)}")

    def render(dataset, images_seen):
        experiment = experiments[dataset]
        images = experiment.val_images[:n_show]
        rows = {"original": images}
        summary: dict = {"dataset": dataset, "images_seen": images_seen}
        for method, run in experiment.runs.items():
            rows[LABELS.get(method, method)], losses = run.reconstruct(images, images_seen)
            summary[f"{method}_loss"] = float(losses.mean())
        return _reconstruction_figure(rows, experiment, images_seen), summary

    options = list(next(iter(checkpoints)))
    controls = {"dataset": widgets.Dropdown(options=list(experiments), description="dataset"),
                "images_seen": widgets.SelectionSlider(options=options, value=options[-1], description="images seen")}
    return interactive_view(render, controls)


def _reconstruction_figure(rows: dict[str, torch.Tensor], experiment: LiveExperiment, images_seen: int) -> go.Figure:
    n = len(rows)
    specs = [[{}, {"rowspan": n}]] + [[{}, None] for _ in range(n - 1)]
    figure = make_subplots(rows=n, cols=2, column_widths=[0.62, 0.38], specs=specs, horizontal_spacing=0.1,
                           vertical_spacing=0.04, subplot_titles=["", "validation loss of the live run"])
    for i, (name, images) in enumerate(rows.items(), start=1):
        figure.add_trace(image_mosaic(images, name=name), i, 1)
        anchor = figure.get_subplot(i, 1).xaxis.plotly_name.replace("axis", "")
        figure.update_xaxes(visible=False, row=i, col=1)
        figure.update_yaxes(title_text=name, showticklabels=False, showgrid=False, zeroline=False,
                            autorange="reversed", scaleanchor=anchor, constrain="domain", row=i, col=1)
    for method, run in experiment.runs.items():
        history, style = run.trainer.history, dict(color=COLORS.get(method))
        label = LABELS.get(method, method)
        figure.add_trace(go.Scatter(x=history.images_seen, y=compact(history.val_loss), mode="lines+markers",
                                    name=label, legendgroup=method, line=style), 1, 2)
        now = history.images_seen.index(images_seen)
        figure.add_trace(go.Scatter(x=[images_seen], y=[history.val_loss[now]], mode="markers",
                                    name=f"{label} now", legendgroup=method, showlegend=False,
                                    marker=dict(size=14, symbol="circle-open", line=dict(width=3), **style)), 1, 2)
    figure.update_xaxes(type="log", title_text="training images seen", row=1, col=2)
    figure.update_layout(title=dict(text=f"{experiment.dataset}: the same validation images after "
                                         f"{images_seen:,} training images (live run)", font=dict(size=13)),
                         height=130 * n + 140, width=980, legend=dict(orientation="h", y=-0.12))
    return figure


def _finished(folder: Path) -> bool:
    run_file = folder / "run.json"
    return run_file.exists() and bool(read_json(run_file).get("completed"))


def _describe_run(folder: Path) -> str:
    commands = [i["command"] for i in read_json(folder / "run.json").get("invocations", []) if i.get("command")]
    return f"{folder}" + (f" ({commands[0]})" if commands else "")
