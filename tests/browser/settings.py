"""Paths and options of the browser tests, each overridable from the environment.

    GFE_CHROMIUM            the Chromium executable (default ``/usr/bin/chromium``)
    GFE_BROWSER_NOTEBOOKS   the folder whose ``*.ipynb`` are opened (default ``notebooks/``)
    GFE_BROWSER_ARTIFACTS   where screenshots and the server log go (default ``artifacts/browser``)
    GFE_BROWSER_RUN_TIMEOUT     seconds allowed for one notebook's "Run All Cells" (default 600)
    GFE_BROWSER_SLIDER_TIMEOUT  seconds allowed for a figure to redraw after a slider step (default 120)
    GFE_BROWSER_WAIT_TIMEOUT    seconds allowed for the server to start, a kernel to start and go idle,
                                and a save to reach the disk (default 300)
    GFE_BROWSER_API_TIMEOUT     seconds allowed for one answer of the server's REST API (default 60)

The defaults leave room for a loaded 2-core machine (a quiet one needs far less); they only
cost time when something hangs. Raise them on a slower machine.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = Path(os.environ.get("GFE_BROWSER_NOTEBOOKS", REPO_ROOT / "notebooks")).resolve()
ARTIFACTS_DIR = Path(os.environ.get("GFE_BROWSER_ARTIFACTS", REPO_ROOT / "artifacts" / "browser")).resolve()
CHROMIUM = os.environ.get("GFE_CHROMIUM", "/usr/bin/chromium")


def seconds_from_env(name: str, default: float) -> float:
    """``$name`` as a number of seconds > 0, else ``default``; a clear error for anything else."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise ValueError(f"${name} must be a number of seconds > 0, got {text!r}")
    return value


RUN_TIMEOUT = seconds_from_env("GFE_BROWSER_RUN_TIMEOUT", 600.0)
SLIDER_TIMEOUT = seconds_from_env("GFE_BROWSER_SLIDER_TIMEOUT", 120.0)
WAIT_TIMEOUT = seconds_from_env("GFE_BROWSER_WAIT_TIMEOUT", 300.0)
API_TIMEOUT = seconds_from_env("GFE_BROWSER_API_TIMEOUT", 60.0)

# Flags for Chromium on a machine with no display, no GPU and a closed network: without the
# background-networking ones Chromium keeps trying (and failing) to reach Google's services.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
