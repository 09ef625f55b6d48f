"""Start and stop a private JupyterLab server for the browser tests.

The server runs with the tests' own Python (``sys.executable -m jupyter lab``), so it uses the
JupyterLab, widget and plotly extensions of the environment under test, and its kernels
inherit the tests' environment (``GFE_DATA_DIR`` among it). It listens on a free loopback port
with a random token, serves a temporary copy of the notebooks (running them in the browser must
never rewrite the committed files), and keeps its settings, workspaces and runtime files in a
temporary folder: the news pop-up, update checks and autosave are turned off there, and every
cell is attached to the page (``windowingMode: none``) so that all outputs can be inspected.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .settings import API_TIMEOUT, WAIT_TIMEOUT

# User settings written before the server starts: {plugin id: {setting: value}}.
USER_SETTINGS = {
    # No "get notified about official Jupyter news?" toast covering the page, no requests out.
    "@jupyterlab/apputils-extension:notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
        "doNotDisturbMode": True,
    },
    # Attach every cell to the DOM, so that outputs below the fold can be checked; start the
    # notebook's kernel without the "Select Kernel" dialog.
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none", "autoStartDefaultKernel": True},
    # The served files are a throw-away copy, but never write them behind the test's back.
    "@jupyterlab/docmanager-extension:plugin": {"autosave": False},
}


class ServerAPIError(RuntimeError):
    """A REST call to the server that gave no valid answer; ``status`` is the HTTP status, if any."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


# Failures of one REST call that a busy server can cause and a retry can cure: refused or reset
# connections, timeouts, answers cut short (truncated JSON) and 5xx statuses.
_TRANSIENT = (urllib.error.URLError, ConnectionError, TimeoutError, http.client.HTTPException, json.JSONDecodeError)


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_user_settings(settings_dir: Path, settings: dict[str, dict] = USER_SETTINGS) -> None:
    """Write JupyterLab user settings files (``<package>/<plugin>.jupyterlab-settings``)."""
    for plugin_id, values in settings.items():
        package, plugin = plugin_id.split(":")
        path = settings_dir / package / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values, indent=2))


def copy_notebooks(source: Path, destination: Path) -> Path:
    """Copy the notebooks folder (with any files next to the notebooks), minus checkpoints."""
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    return destination


@dataclass
class JupyterLabServer:
    """A JupyterLab server process serving ``root_dir``; use :meth:`start` and :meth:`stop`.

    ``work_dir`` holds the server's settings, workspaces, runtime files and log.
    """

    root_dir: Path
    work_dir: Path
    log_path: Path
    python: str = sys.executable
    startup_timeout: float = WAIT_TIMEOUT
    port: int = 0
    token: str = field(default_factory=lambda: secrets.token_hex(24))
    process: subprocess.Popen | None = None
    _log_file: object = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def notebook_url(self, name: str) -> str:
        """The URL opening notebook ``name`` (relative to ``root_dir``) in JupyterLab, logged in.

        Each notebook gets its own, reset workspace: otherwise JupyterLab reopens every notebook
        opened before it (starting a kernel for each) and the page holds several notebooks.
        """
        workspace = urllib.request.pathname2url(Path(name).stem)
        return (
            f"{self.base_url}/lab/workspaces/{workspace}/tree/{urllib.request.pathname2url(name)}"
            f"?reset&token={self.token}"
        )

    def command(self) -> list[str]:
        settings = self.work_dir / "user-settings"
        return [
            self.python,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={self.work_dir / 'workspaces'}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
        ] + (["--allow-root"] if os.geteuid() == 0 else [])  # CI runs the tests as root

    def environment(self) -> dict[str, str]:
        """The tests' environment, with the server's config and runtime files kept private.

        ``MPLBACKEND`` is dropped: the test-wide ``Agg`` backend is for nbval; a kernel started
        by JupyterLab should pick the inline backend, as it does for a user.
        """
        env = dict(os.environ)
        env.pop("MPLBACKEND", None)
        env["JUPYTER_CONFIG_DIR"] = str(self.work_dir / "config")
        env["JUPYTER_RUNTIME_DIR"] = str(self.work_dir / "runtime")
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start(self) -> JupyterLabServer:
        """Start the server and wait until its REST API answers; raise with the log tail if not."""
        for sub in ("config", "runtime", "workspaces", "user-settings"):
            (self.work_dir / sub).mkdir(parents=True, exist_ok=True)
        write_user_settings(self.work_dir / "user-settings")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        last_error = ""
        for _attempt in range(3):  # another process may take the free port before the server does
            self.port = free_loopback_port()
            self._log_file = open(self.log_path, "w")
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.root_dir,
                env=self.environment(),
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, killed as a whole in stop()
            )
            last_error = self._wait_until_ready()
            if not last_error:
                return self
            self.stop()
            if "already in use" not in self.log_tail():
                break
        raise RuntimeError(f"JupyterLab did not start: {last_error}\n--- server log tail ---\n{self.log_tail()}")

    def _wait_until_ready(self) -> str:
        """'' once ``/api/status`` answers 200, else why not (exited or timed out)."""
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return f"the server exited with code {self.process.returncode}"
            try:
                self.api("GET", "/api/status", timeout=10, tries=1)
                return ""
            except ServerAPIError:
                pass
            time.sleep(0.5)
        return f"no answer on {self.base_url}/api/status within {self.startup_timeout:.0f} s"

    def api(self, method: str, path: str, timeout: float = API_TIMEOUT, tries: int = 4):
        """Call the server's REST API with the token; the decoded JSON answer ({} if empty).

        A busy server may refuse, drop or cut short an answer: such transient failures are
        retried, ``tries`` times in all with growing pauses (1, 2, 4 s). Raises
        :class:`ServerAPIError` naming the call and the last failure; a 4xx status at once.
        """
        request = urllib.request.Request(
            self.base_url + path,
            method=method,
            headers={"Authorization": f"token {self.token}"},
            data=b"" if method in ("POST", "PUT", "PATCH") else None,
        )
        for attempt in range(1, tries + 1):
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    body = response.read()
                return json.loads(body) if body else {}
            except urllib.error.HTTPError as error:
                failure, status = f"HTTP {error.code} {error.reason}", error.code
                if error.code < 500:
                    break
            except _TRANSIENT as error:
                failure, status = f"{type(error).__name__}: {error}", None
            if attempt < tries:
                time.sleep(2 ** (attempt - 1))
        raise ServerAPIError(
            f"JupyterLab API {method} {path} gave no valid answer after {attempt} "
            f"tr{'y' if attempt == 1 else 'ies'} ({timeout:.0f} s each): {failure}",
            status,
        )

    def shutdown_kernels(self, timeout: float = API_TIMEOUT) -> None:
        """Delete every session and kernel, so that the next notebook has the CPU to itself.

        A session or kernel that is already gone (404) is fine.
        """
        for kind in ("sessions", "kernels"):
            for item in self.api("GET", f"/api/{kind}"):
                try:
                    self.api("DELETE", f"/api/{kind}/{item['id']}", timeout=timeout)
                except ServerAPIError as error:
                    if error.status != 404:
                        raise

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def stop(self, grace: float = 15.0) -> None:
        """Shut the server down: kernels first (they run in their own sessions), then its group.

        Asks the server to shut down over its API (which also ends its kernels), then sends
        SIGTERM and finally SIGKILL to the server's process group. Safe to call more than once.
        """
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            try:
                self.shutdown_kernels(timeout=10)
            except ServerAPIError:  # the signals below still run
                pass
            try:
                self.api("POST", "/api/shutdown", timeout=10, tries=1)
                process.wait(timeout=grace)
            except (ServerAPIError, subprocess.TimeoutExpired):
                pass
            for sig in (signal.SIGTERM, signal.SIGKILL):
                if process.poll() is not None:
                    break
                try:
                    os.killpg(process.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    process.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    continue
        if process is not None:
            try:  # reap the group's leftovers, if any, after the leader is gone
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
