"""An exclusive lock on a run folder, so that two commands never write into one folder at once.

The lock is ``<folder>/.lock``, held with ``flock`` by the process that runs the experiment; it
records the holder (pid, host, command, start time) for the message the next command gets. The
operating system releases a ``flock`` when its process ends however it ends, so a lock file left
by a killed process is stale by construction: the next command takes it over (and says so).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

LOCK_FILE = ".lock"


class FolderInUseError(OSError):
    """Another process holds the folder's lock."""


class FolderLock:
    """``with FolderLock(folder, command):`` holds ``folder``'s lock for the block, or raises
    :class:`FolderInUseError` naming the holder; the lock file is removed on release."""

    def __init__(self, folder: str | os.PathLike, command: str | None = None):
        self.path = Path(folder) / LOCK_FILE
        self.command = command
        self._fd: int | None = None

    def __enter__(self) -> FolderLock:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise FolderInUseError(
                    f"out folder {self.path.parent} is in use by another run ({_describe(holder)}); "
                    f"wait for it to finish, or use another --out folder"
                ) from None
            try:  # a releasing holder may have unlinked the file we opened: lock the current one
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        stale = _read(fd)
        if stale:
            warnings.warn(
                f"took over the lock of {self.path.parent} left by a run that ended without releasing it "
                f"({_describe(stale)})",
                stacklevel=2,
            )
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": self.command or " ".join(sys.argv),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc_info) -> None:
        self.path.unlink(missing_ok=True)  # while still locked, so no one locks the old file after us
        os.close(self._fd)
        self._fd = None


def _read_holder(fd: int, wait: float = 2.0) -> dict:
    """The holder of a lock someone else holds; it writes itself in just after locking, so an empty
    file is read again for up to ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while not (holder := _read(fd)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return holder


def _read(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {"damaged lock file": True}


def _describe(holder: dict) -> str:
    if not holder.get("pid"):
        return "holder unknown"
    return (
        f"pid {holder['pid']} on {holder.get('host', '?')} since {holder.get('started', '?')}: "
        f"{holder.get('command', '?')}"
    )
