"""The per-user cache folder of gfe-viz: ``$XDG_CACHE_HOME/gfe-viz``, else ``~/.cache/gfe-viz``.

As the XDG base-directory specification asks, an empty or relative ``XDG_CACHE_HOME`` counts as
unset, so the caches never land in whatever folder a command happens to run in.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_home() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "gfe-viz"
