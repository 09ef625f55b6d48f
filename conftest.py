"""Test-wide settings: offline data from ../shared/data, no progress bars, a headless plot backend.

They are set before nbval starts notebook kernels, which inherit this environment.
"""

import os
from pathlib import Path

_SHARED_DATA = Path(__file__).resolve().parent.parent / "shared" / "data"
if "GFE_DATA_DIR" not in os.environ and _SHARED_DATA.is_dir():
    os.environ["GFE_DATA_DIR"] = str(_SHARED_DATA)
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
