"""Fixtures for the browser tests: Debian's Chromium driven by Playwright, and a private JupyterLab.

Nothing is installed here at run time. ``.ci/install-browser`` installs ``/usr/bin/chromium``
and the ``test`` extra installs ``playwright``; when either is missing the tests fail with the
fix in the message under CI (``CI`` set), and are skipped with that reason elsewhere.

Paths and options: see ``settings.py``.
"""

from __future__ import annotations

import os

import pytest

from .jupyterlab_process import JupyterLabServer, copy_notebooks
from .settings import ARTIFACTS_DIR, CHROMIUM, CHROMIUM_ARGS, NOTEBOOKS_DIR
from .site_server import StaticServer, build_site


def pytest_configure(config):
    """Register the ``browser`` marker, so that ``-m "not browser"`` leaves these tests out locally."""
    config.addinivalue_line("markers", "browser: end-to-end tests of the notebooks in JupyterLab in Chromium")


def in_ci() -> bool:
    """Whether the tests run in CI (``CI`` set to anything but empty, 0 or false)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(reason: str):
    """A missing browser tool: a failure in CI, where it must be installed, else a skip."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so the browser tests must run)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """The path of Debian's Chromium, checked to exist."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        missing(f"Chromium not found at {CHROMIUM}: run `sudo .ci/install-browser` (Debian's chromium package)")
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium_executable):
    """A headless Chromium launched by Playwright for Python, with a fresh empty profile.

    Playwright gives every ``launch`` a new temporary user-data-dir, so no state is shared
    with another run.
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("the Python package playwright is not installed: `pip install -e '.[test]'`")
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(
            executable_path=chromium_executable, headless=True, args=CHROMIUM_ARGS, timeout=60_000
        )
    except Exception as error:
        playwright.stop()
        pytest.fail(f"Chromium at {chromium_executable} did not start under Playwright: {error}", pytrace=False)
    try:
        yield browser
    finally:
        browser.close()
        playwright.stop()


@pytest.fixture(scope="session")
def jupyterlab(tmp_path_factory):
    """A JupyterLab server on a free loopback port with a random token, serving a copy of the notebooks.

    Its kernels inherit this process's environment (``GFE_DATA_DIR`` set by the repository's
    conftest among it). The server and its kernels are shut down however the tests end; its
    log is kept next to the screenshots.
    """
    work = tmp_path_factory.mktemp("jupyterlab")
    root = copy_notebooks(NOTEBOOKS_DIR, work / "notebooks")
    server = JupyterLabServer(root_dir=root, work_dir=work / "server", log_path=ARTIFACTS_DIR / "jupyterlab-server.log")
    try:
        server.start()
    except RuntimeError as error:  # start() has stopped the server already
        pytest.fail(str(error), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def site(tmp_path_factory, chromium_executable):
    """The lessons' site built by ``mkdocs build --strict`` into a temporary folder, served on loopback.

    It needs Chromium only to be looked at: without Chromium it is not built (the tests using it
    skip, or fail in CI, with the reason).
    """
    site_dir = tmp_path_factory.mktemp("site")
    try:
        build_site(site_dir)
        server = StaticServer(site_dir).start()
    except (RuntimeError, OSError) as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield server
    finally:
        server.stop()
