"""One-call set-up for the lesson notebooks: seeds, plotly renderer, device report."""

from __future__ import annotations

import random

import numpy as np
import torch

from .device import resolve_device


def setup_notebook(seed: int = 0, device: str | torch.device | None = None) -> torch.device:
    """Seed python, numpy and torch, render plotly as its mimetype, and return the device.

    The ``plotly_mimetype`` renderer keeps notebooks small (no embedded plotly.js) and
    deterministic, which nbval and JupyterLab both need. Notebooks default to the CPU on one
    thread so that their printed numbers match CI (and small models run fastest that way); pass
    ``device="auto"`` to use CUDA when present.
    """
    import plotly.io as pio

    pio.renderers.default = "plotly_mimetype"
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    return resolve_device(device if device is not None else "cpu")
