"""The per-user cache folder of gfe-viz, ``$XDG_CACHE_HOME/gfe-viz``, else ``~/.cache/gfe-viz``, and
the folders kept there (the data, the demo models), each overridable by an argument or a variable.

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


def user_folder(given: str | os.PathLike | None, variable: str, name: str) -> Path:
    """``given``, else the environment ``variable`` when set and not empty, else ``name`` in
    :func:`cache_home`; ``~`` is expanded in the first two."""
    if given is not None:
        return Path(given).expanduser()
    if os.environ.get(variable):
        return Path(os.environ[variable]).expanduser()
    return cache_home() / name
