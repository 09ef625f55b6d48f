"""Result files: atomic writes (a reader or an interruption never sees half a file) and the CSV format."""

from __future__ import annotations

import csv
import io
import json
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


def atomic_write_json(path: str | os.PathLike, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def read_json(path: str | os.PathLike):
    return json.loads(Path(path).read_text(encoding="utf-8"))


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
