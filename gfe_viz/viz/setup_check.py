"""Checks for the first notebook: do widgets and plotly figures render, and what is this kernel running on.

Widgets need a front-end extension, ``@jupyter-widgets/jupyterlab-manager``, installed in the
environment that runs the JupyterLab server (not necessarily the kernel's). Without it a slider
shows as text such as ``IntSlider(value=0)`` or as "Error displaying widget".
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import torch

from .interactive import InteractiveView, interactive_view

WIDGETS_EXTENSION = "@jupyter-widgets/jupyterlab-manager"
PACKAGES = ("torch", "torchdiffeq", "plotly", "ipywidgets", "jupyterlab", "nbval")


def widget_check_view() -> InteractiveView:
    """A slider that redraws a sine wave: if moving it changes the curve, widgets and plotly both work.

    Controls: ``frequency`` (0.5-5). Summary: the frequency and the number of zero crossings on [0, 2π].
    """
    t = np.linspace(0.0, 2 * np.pi, 400, endpoint=False)

    def render(frequency):
        y = np.sin(frequency * t)
        figure = go.Figure(go.Scatter(x=t, y=y, mode="lines", name=f"sin({frequency:g} t)"))
        figure.update_layout(
            title=f"sin({frequency:g} t): move the slider and this curve changes",
            width=640,
            height=320,
            xaxis_title="t",
            yaxis=dict(range=[-1.1, 1.1]),
        )
        return figure, {"frequency": float(frequency), "zero_crossings": zero_crossings(y)}

    slider = widgets.FloatSlider(value=1.0, min=0.5, max=5.0, step=0.5, description="frequency")
    return interactive_view(render, {"frequency": slider})


def zero_crossings(values: np.ndarray) -> int:
    """How many times ``values`` changes sign (zeros themselves are skipped)."""
    signs = np.sign(np.asarray(values, dtype=float))
    signs = signs[signs != 0]
    return int(np.count_nonzero(signs[1:] != signs[:-1]))


def widgets_extension_folders() -> list[Path]:
    """The folders of this environment's Jupyter data path that hold the widgets front-end extension."""
    from jupyter_core.paths import jupyter_path

    return [
        Path(folder) / WIDGETS_EXTENSION
        for folder in jupyter_path("labextensions")
        if (Path(folder) / WIDGETS_EXTENSION / "package.json").is_file()
    ]


def environment_report(device: torch.device) -> dict[str, str]:
    """What this kernel runs: the device, CUDA availability, package versions, the widgets extension."""
    report = {
        "device": str(device),
        "cuda available": str(torch.cuda.is_available()),
        "torch threads": str(torch.get_num_threads()),
    }
    for package in PACKAGES:
        try:
            report[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            report[package] = "not installed"
    found = widgets_extension_folders()
    report[WIDGETS_EXTENSION] = (
        f"installed in {found[0].parent.parent}"
        if found
        else "not found in this environment: install ipywidgets (>= 8) where JupyterLab runs"
    )
    return report
