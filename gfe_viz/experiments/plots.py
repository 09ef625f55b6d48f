"""The data-efficiency figure: validation loss against images seen and against training wall time."""

from __future__ import annotations

import io
import os

from ..style import METHOD_COLORS, METHOD_LABELS
from .results_io import atomic_write_bytes
from .summary import seed_curve


def curve_label(method: str, n_seeds: int) -> str:
    """Legend label of a method's seed-mean curve, e.g. ``GFE (AMD) (3 seeds)``."""
    return f"{METHOD_LABELS.get(method, method)} ({n_seeds} seed{'s' * (n_seeds > 1)})"


def plot_data_efficiency(rows: list[dict], summary: dict | None = None, path: str | os.PathLike | None = None):
    """One row of two panels per dataset: seed-mean curves with the seed min-max range shaded, and
    the summary's target loss as a dashed line. Saved as PNG to ``path`` (atomically) when given; no pyplot
    state is touched, so it works headless and in notebooks alike.

    Returns:
        The matplotlib ``Figure``.
    """
    from matplotlib.figure import Figure

    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    if not datasets:
        raise ValueError("rows must hold at least one result row, got none")
    fig = Figure(figsize=(11, 4 * len(datasets)), layout="constrained")
    axes = fig.subplots(len(datasets), 2, squeeze=False)
    for (ax_images, ax_time), dataset in zip(axes, datasets):
        for method in dict.fromkeys(r["method"] for r in rows if r["dataset"] == dataset):
            c = seed_curve(rows, dataset, method)
            style = {"color": METHOD_COLORS.get(method), "label": curve_label(method, len(c.seeds))}
            for ax, x in ((ax_images, c.images_seen), (ax_time, c.wall_time)):
                ax.plot(x, c.mean, marker="o", markersize=3, **style)
                if len(c.seeds) > 1:
                    ax.fill_between(x, c.low, c.high, color=style["color"], alpha=0.2, linewidth=0)
        target = (summary or {}).get(dataset, {}).get("target")
        for ax, xlabel in (
            (ax_images, "training images seen"),
            (ax_time, "training wall time (s, evaluation excluded)"),
        ):
            if target is not None:
                ax.axhline(target, color="gray", linestyle="--", linewidth=1, label=f"target {target:.4f}")
            ax.set_xscale("log")
            ax.set_xlabel(xlabel)
            ax.set_ylabel("validation loss (BCE per pixel)")
            ax.set_title(dataset)
            ax.grid(True, which="both", alpha=0.3)
        ax_images.legend()
    if path is not None:
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=120)
        atomic_write_bytes(path, png.getvalue())
    return fig
