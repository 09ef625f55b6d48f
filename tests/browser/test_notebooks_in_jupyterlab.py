"""The notebooks as a user meets them: run in JupyterLab, in a real browser.

Kernel-side tests (nbval) cannot see whether a slider renders, so each notebook of the series is
opened in JupyterLab in headless Chromium, run with the Run menu's "Run All Cells", and checked:

- no error output (kernel errors, tracebacks shown in a cell or inside a widget Output);
- every widget view the kernel sent is rendered as a control, never as its text repr
  (``IntSlider(value=...)``) nor as "Error displaying widget";
- every plotly figure has drawn SVG content with its traces;
- in every interactive view (a widget with a slider and an Output), pressing an arrow key on
  a slider redraws the figure (its plotly data or layout changes); the first slider is tried
  first, then the next ones (up to three) if it changed nothing.

Each slider step's input-to-redraw time (key press to changed figure) goes to
``artifacts/browser/latency.csv``, one row per step, as a report: no time is asserted.
A screenshot of each notebook goes to ``artifacts/browser/<name>.png``, pass or fail. Notebooks
run one at a time and each kernel is shut down afterwards, so that a 2-core CI machine runs one
notebook's work at a time.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys

import pytest

from .jupyterlab_process import ServerAPIError
from .notebook_page import NotebookPage, find_problems, write_latency
from .settings import ARTIFACTS_DIR, NOTEBOOKS_DIR, REPO_ROOT, RUN_TIMEOUT, SLIDER_TIMEOUT, WAIT_TIMEOUT

NOTEBOOKS = sorted(path.name for path in NOTEBOOKS_DIR.glob("*.ipynb")) if NOTEBOOKS_DIR.is_dir() else []
VIEWPORT = {"width": 1400, "height": 1000}
LATENCY_CSV = ARTIFACTS_DIR / "latency.csv"

pytestmark = pytest.mark.browser


def _shown(path) -> str:
    """A path relative to the repository when it is inside it (shorter failure messages)."""
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


@pytest.mark.timeout(RUN_TIMEOUT + 2 * WAIT_TIMEOUT + 3 * SLIDER_TIMEOUT)  # a backstop: each wait has its own limit
@pytest.mark.parametrize(
    "notebook",
    NOTEBOOKS or [pytest.param(None, marks=pytest.mark.skip(reason=f"no *.ipynb in {NOTEBOOKS_DIR}"))],
    ids=[name.removesuffix(".ipynb") for name in NOTEBOOKS] or ["no-notebooks"],
)
def test_notebook_runs_and_renders_in_jupyterlab(notebook, browser, jupyterlab):
    """Run one notebook through JupyterLab's UI and check what the page shows (see module docstring)."""
    page = browser.new_page(viewport=VIEWPORT)
    nb = NotebookPage(page, jupyterlab, notebook)
    screenshot = ARTIFACTS_DIR / f"{notebook.removesuffix('.ipynb')}.png"
    driver_errors: list[str] = []
    try:
        nb.open()
        nb.run_all(timeout=RUN_TIMEOUT)
        nb.save()
        if not nb.run.timed_out:
            for cell, output in nb.interactive_views():
                nb.move_sliders(cell, output, timeout=SLIDER_TIMEOUT)
    except Exception as error:  # a page that cannot be driven is a finding too, with its screenshot
        first_line = (str(error).strip().splitlines() or [""])[0][:300]
        driver_errors.append(f"the test could not drive the page: {type(error).__name__}: {first_line}")
    finally:
        try:
            nb.screenshot(screenshot)
        except Exception as error:
            driver_errors.append(f"no screenshot: {error}")
        write_latency(LATENCY_CSV, nb.run)
        page.close()
        try:
            jupyterlab.shutdown_kernels()
        except ServerAPIError as error:
            driver_errors.append(f"the kernel could not be shut down afterwards: {error}")

    problems = driver_errors + find_problems(nb.run)
    views = len({(s.cell, s.output) for s in nb.run.sliders})
    redraws = ", ".join(f"{s.seconds * 1000:.0f} ms" for s in nb.run.sliders if s.changed)
    print(
        f"{notebook}: ran in {nb.run.seconds:.0f} s, {views} interactive view(s) moved (redrawn after "
        f"{redraws or 'no move'}; {_shown(LATENCY_CSV)}), screenshot {_shown(screenshot)}"
    )
    if problems:
        pytest.fail(
            f"{_shown(NOTEBOOKS_DIR / notebook)} in JupyterLab: {len(problems)} problem(s)\n"
            + "\n".join(f"  - {line}" for line in problems)
            + f"\nscreenshot: {_shown(screenshot)}; server log: {_shown(jupyterlab.log_path)}",
            pytrace=False,
        )


def _shipped_labextension_version(distribution: str, extension: str) -> str | None:
    """The version of the JupyterLab extension ``extension`` that a Python distribution installs, if any."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    suffix = f"labextensions/{extension}/package.json"
    for file in dist.files or []:
        if str(file).replace("\\", "/").endswith(suffix):
            return json.loads(dist.locate_file(file).read_text())["version"]
    return None


def test_widget_and_plotly_labextensions_are_installed():
    """``jupyter labextension list`` shows the widget manager (and plotly's extension) enabled and OK.

    Widgets shown as text and blank plotly figures come from a missing front-end extension or
    from version skew between it and the Python package. Each extension must be listed at the
    version that its Python package (jupyterlab_widgets, plotly) installs into this environment,
    so a stale copy elsewhere on JupyterLab's path cannot shadow it.
    """
    result = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"],
        check=False,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "NO_COLOR": "1"},
    )
    listing = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    assert result.returncode == 0, f"`jupyter labextension list` exited with {result.returncode}:\n{listing}"

    widgets_version = _shipped_labextension_version("jupyterlab_widgets", "@jupyter-widgets/jupyterlab-manager")
    assert widgets_version, "jupyterlab_widgets (ipywidgets' JupyterLab extension) is not installed"
    expected = {"@jupyter-widgets/jupyterlab-manager": widgets_version}
    plotly_version = _shipped_labextension_version("plotly", "jupyterlab-plotly")
    if plotly_version:  # plotly releases that ship a JupyterLab extension
        expected["jupyterlab-plotly"] = plotly_version

    for name, version in expected.items():
        line = next((line.strip() for line in listing.splitlines() if line.strip().startswith(name + " ")), None)
        assert line, f"{name} is not listed by `jupyter labextension list`:\n{listing}"
        assert re.search(rf"\bv{re.escape(version)}\b", line), (
            f"{name}: listed as {line!r}, but the installed Python package ships v{version}"
        )
        assert re.search(r"\benabled\b", line) and re.search(r"\bOK\b", line), f"{name} is not enabled and OK: {line!r}"
