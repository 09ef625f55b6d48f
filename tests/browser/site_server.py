"""Build the lessons' static site with ``mkdocs build --strict`` and serve it on a free loopback port.

Both run with the tests' own Python (``sys.executable -m mkdocs``, ``-m http.server``), so the
site is built from this checkout with the docs packages of the environment under test.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .jupyterlab_process import free_loopback_port
from .settings import REPO_ROOT, WAIT_TIMEOUT


def build_site(site_dir: Path, timeout: float = WAIT_TIMEOUT) -> None:
    """``mkdocs build --strict`` into ``site_dir``; raise with mkdocs' output when it fails or warns."""
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)]
    try:
        result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as error:
        raise RuntimeError(
            f"`mkdocs build --strict` did not finish within {timeout:.0f} s (GFE_BROWSER_WAIT_TIMEOUT)"
        ) from error
    if result.returncode != 0:
        raise RuntimeError(f"`mkdocs build --strict` exited with {result.returncode}:\n{result.stdout}{result.stderr}")


@dataclass
class StaticServer:
    """``python -m http.server`` serving ``root`` on 127.0.0.1; use :meth:`start` and :meth:`stop`."""

    root: Path
    port: int = 0
    process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self, timeout: float = WAIT_TIMEOUT) -> StaticServer:
        """Start the server and wait until it answers; raise if it does not."""
        self.port = free_loopback_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(self.port), "--bind", "127.0.0.1", "--directory", str(self.root)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,  # its request log is not read
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with urllib.request.urlopen(self.base_url, timeout=5):
                    return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"python -m http.server did not answer on {self.base_url} within {timeout:.0f} s")

    def stop(self) -> None:
        """Stop the server (safe to call more than once)."""
        process, self.process = self.process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
