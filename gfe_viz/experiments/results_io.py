"""Result files: atomic writes (a reader or an interruption never sees half a file), strict JSON,
the CSV format, and loading saved states without running code from them.

Every file the project writes loads back with ``torch.load(..., weights_only=True)``: a planted
file can hold no code to run, and a damaged one gives a :class:`DamagedFileError` that names it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import tempfile
from pathlib import Path

import torch

#: Columns of ``results.csv``, one row per (dataset, method, seed, checkpoint).
FIELDS = ("dataset", "method", "seed", "images_seen", "val_loss", "train_loss", "wall_time", "encoder_nfe")
_TYPES = {"dataset": str, "method": str, "seed": int, "images_seen": int}


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``path``, then rename it over ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates files private to the user
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


class DamagedFileError(ValueError):
    """A file that cannot be read back: truncated, overwritten, or not one this project wrote."""


def atomic_write_json(path: str | os.PathLike, obj) -> None:
    """Strict JSON (NaN and infinities, which JSON lacks, are written as null), written atomically."""
    atomic_write_text(path, json.dumps(_finite_or_null(obj), indent=2, allow_nan=False) + "\n")


def _finite_or_null(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_null(v) for v in obj]
    return obj


def json_digest(obj) -> str:
    """A short digest of a JSON-ready value, the same for equal values (keys sorted)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_torch_file(path: str | os.PathLike, fix: str) -> dict:
    """A dict saved by :func:`atomic_torch_save`, loaded with ``weights_only=True`` (nothing in the
    file can run) onto the CPU. A file that does not load raises :class:`DamagedFileError` naming
    it, the reason, and ``fix`` (what to do about it)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, random bytes, or a pickle that needs code to load
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DamagedFileError(
            f"{path} is damaged or not a file gfe-viz wrote ({type(exc).__name__}: {reason[:200]}); {fix}"
        ) from None
    if not isinstance(state, dict):
        raise DamagedFileError(f"{path} holds a {type(state).__name__}, not a saved gfe-viz state; {fix}")
    return state


def read_json(path: str | os.PathLike, fix: str = "restore it or delete it"):
    """The JSON value in ``path``; a file that does not parse raises :class:`DamagedFileError`."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DamagedFileError(f"{path} is damaged: not valid JSON ({exc}); {fix}") from None


def write_rows(path: str | os.PathLike, rows: list[dict]) -> None:
    """Write result rows as CSV with the :data:`FIELDS` columns; floats keep full precision."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items() if k in FIELDS})
    atomic_write_text(path, out.getvalue())


def read_rows(path: str | os.PathLike) -> list[dict]:
    """Read ``results.csv`` back into dicts with ints for seed and images_seen, floats for the rest."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != FIELDS:
            raise ValueError(f"{path} must have the columns {list(FIELDS)}, got {reader.fieldnames}")
        return [{k: _TYPES.get(k, float)(v) for k, v in row.items()} for row in reader]
