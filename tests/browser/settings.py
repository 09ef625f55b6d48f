"""Paths and options of the browser tests, each overridable from the environment.

    GFE_CHROMIUM            the Chromium executable (default ``/usr/bin/chromium``)
    GFE_BROWSER_NOTEBOOKS   the folder whose ``*.ipynb`` are opened (default ``notebooks/``)
    GFE_BROWSER_ARTIFACTS   where screenshots and the server log go (default ``artifacts/browser``)
    GFE_BROWSER_RUN_TIMEOUT     seconds allowed for one notebook's "Run All Cells" (default 300)
    GFE_BROWSER_SLIDER_TIMEOUT  seconds allowed for a figure to redraw after a slider step (default 60)
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = Path(os.environ.get("GFE_BROWSER_NOTEBOOKS", REPO_ROOT / "notebooks")).resolve()
ARTIFACTS_DIR = Path(os.environ.get("GFE_BROWSER_ARTIFACTS", REPO_ROOT / "artifacts" / "browser")).resolve()
CHROMIUM = os.environ.get("GFE_CHROMIUM", "/usr/bin/chromium")
RUN_TIMEOUT = float(os.environ.get("GFE_BROWSER_RUN_TIMEOUT", "300"))
SLIDER_TIMEOUT = float(os.environ.get("GFE_BROWSER_SLIDER_TIMEOUT", "60"))

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
