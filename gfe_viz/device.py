"""Device selection (CUDA when present, else CPU, always overridable) and the CPU thread count."""

from __future__ import annotations

import contextlib
import os

import torch


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Return a ``torch.device``; ``None`` or ``"auto"`` picks CUDA when available, else CPU."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    expected = "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be {expected}, got {device!r}") from exc
    if resolved.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device must be {expected}, got {device!r}")
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} was requested but CUDA is not available on this machine")
        count = torch.cuda.device_count()
        if resolved.index is not None and resolved.index >= count:
            raise ValueError(
                f"device {device!r} was requested but this machine has {count} CUDA device(s): "
                f"expected cuda:0 to cuda:{count - 1}"
            )
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} was requested but MPS (Apple GPUs) is not available on this machine")
    return resolved


#: batches below this size train fastest on one CPU thread
SMALL_BATCH = 128


def threads_for_batch(batch_size: int) -> int:
    """The torch CPU thread count for training at ``batch_size``: one thread below
    :data:`SMALL_BATCH` samples (two threads were 10 to 50 times slower at batch 5 on a busy
    2-core machine), else one per CPU core."""
    return 1 if batch_size < SMALL_BATCH else max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def torch_threads(n: int):
    """Run a block with ``n`` torch intra-op threads, restoring the previous count afterwards.

    Small models at small batches run fastest, and bit-for-bit reproducibly, on one thread: the
    lessons and the demo models use it so that cached weights and printed numbers do not depend
    on the machine's core count.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
