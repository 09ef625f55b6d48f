"""Drive one notebook in JupyterLab through the UI and read back what the page shows.

:class:`NotebookPage` opens a notebook, runs all cells from the Run menu, waits for the kernel,
saves the notebook (so that the outputs the kernel sent can be read from the file), and
inspects the page: what each cell's outputs rendered as, whether plotly drew its figures, and
whether moving a slider of an interactive view redraws its figure. :func:`find_problems`
compares the page with the saved outputs and returns one line per problem, each naming the
cell; the test turns those lines into its failure message.
"""

from __future__ import annotations

import csv
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from .settings import WAIT_TIMEOUT

# Text that a widget view shows instead of its control when it failed (or never finished) to render.
WIDGET_FAILURE_TEXTS = ("Error displaying widget", "Loading widget...")
# The text/plain repr of a widget (IntSlider(value=0, ...), VBox(children=(...)), interactive(...)),
# shown instead of the control when the widget front end is missing or cannot reach the kernel.
WIDGET_REPR = re.compile(
    r"\b[A-Za-z]*(Slider|Box|Output|Dropdown|Button|Text|Checkbox|Play|interactive|Tab|Accordion|HTML|Label)"
    r"\((value|children|description|options|layout|outputs|min|max)="
)
# A traceback, or the last line of an exception shown without one (SyntaxError, for instance).
ERROR_TEXT = re.compile(r"Traceback \(most recent call last\)|^\s*\w*(Error|Exception)\b", re.MULTILINE)
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
PLOTLY_MIME = "application/vnd.plotly.v1+json"

# What every cell shows, read in the page. Cells are in notebook order (windowingMode "none"
# keeps all of them in the DOM). "top" outputs are the cell's own; outputs shown inside an
# ipywidgets Output are listed with nested=true.
_READ_CELLS_JS = r"""
() => {
  const box = el => { const r = el.getBoundingClientRect(); return [Math.round(r.width), Math.round(r.height)]; };
  const cells = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell')];
  return cells.map((cell, index) => {
    const prompt = cell.querySelector('.jp-InputArea-prompt');
    const outputs = [...cell.querySelectorAll('.jp-OutputArea-output')].map(out => {
      const plot = out.classList.contains('js-plotly-plot') ? out : out.querySelector('.js-plotly-plot');
      const widget = out.querySelector('.jupyter-widgets') || (out.classList.contains('jupyter-widgets') ? out : null);
      return {
        nested: out.parentElement.closest('.widget-output') !== null,
        mime: out.getAttribute('data-mime-type'),
        text: (out.innerText || '').slice(0, 2000),
        widget: widget ? {size: box(widget), error: widget.classList.contains('widget-error')} : null,
        sliders: out.querySelectorAll('.widget-slider .noUi-handle').length,
        outputWidgets: out.querySelectorAll('.widget-output').length,
        plot: plot ? {
          size: box(plot),
          svg: plot.querySelectorAll('.main-svg').length,
          svgSize: plot.querySelector('.main-svg') ? box(plot.querySelector('.main-svg')) : [0, 0],
          traces: Array.isArray(plot.data) ? plot.data.length : -1,
          drawn: plot.querySelectorAll(
            '.main-svg g.trace, .main-svg g.hm, .main-svg g.contour, .main-svg g.slice, ' +
            '.main-svg .imagelayer image, .main-svg .layer-above image, .gl-container canvas').length,
          noWebgl: plot.querySelector('.no-webgl') !== null,
        } : null,
      };
    });
    return {
      index,
      type: cell.classList.contains('jp-CodeCell') ? 'code'
        : cell.classList.contains('jp-MarkdownCell') ? 'markdown' : 'raw',
      prompt: prompt ? prompt.textContent.trim() : '',
      outputs,
    };
  });
}
"""

# [cell index, top output index, element] for every output of a cell that is not inside an
# ipywidgets Output (an expression: it is pasted into the functions below).
_TOP_OUTPUTS_JS = r"""
[...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell')].flatMap((cell, index) =>
  [...cell.querySelectorAll('.jp-OutputArea-output')]
    .filter(o => o.parentElement.closest('.widget-output') === null)
    .map((out, k) => [index, k, out]))
"""

# A fingerprint of the figures inside the top output of cell `index`, output `k`: the plotly
# data and layout of every figure (not the SVG, whose clip-path ids change on every redraw).
_FIGURE_FINGERPRINT_JS = (
    r"""
([index, k]) => {
  const found = ("""
    + _TOP_OUTPUTS_JS
    + r""").find(([i, j]) => i === index && j === k);
  if (!found) return null;
  const view = found[2];
  const parts = [...view.querySelectorAll('.js-plotly-plot')].map(plot => {
    try { return JSON.stringify([plot.data, plot.layout]); }
    catch (e) { return plot.querySelector('.main-svg') ? plot.querySelector('.main-svg').textContent : ''; }
  });
  let hash = 5381;
  const text = parts.join('\u0000');
  for (let i = 0; i < text.length; i++) hash = ((hash * 33) ^ text.charCodeAt(i)) >>> 0;
  return parts.length + ':' + text.length + ':' + hash;
}
"""
)

# True once the fingerprint of cell `index`, output `k` differs from `before` (polled by the page).
_FIGURE_CHANGED_JS = "([index, k, before]) => (" + _FIGURE_FINGERPRINT_JS + ")([index, k]) !== before"

# Starts watching the ipywidgets Outputs inside the top output of cell `index`, output `k`:
# window.__gfeOutputAt becomes the time (ms after this call) their content first changes, which
# is when the kernel's new figure arrives, before plotly draws it.
_WATCH_OUTPUT_JS = (
    r"""
([index, k]) => {
  const found = ("""
    + _TOP_OUTPUTS_JS
    + r""").find(([i, j]) => i === index && j === k);
  if (window.__gfeObserver) window.__gfeObserver.disconnect();
  window.__gfeOutputAt = null;
  const start = performance.now();
  window.__gfeObserver = new MutationObserver(() => {
    if (window.__gfeOutputAt === null) window.__gfeOutputAt = performance.now() - start;
  });
  if (found) found[2].querySelectorAll('.widget-output').forEach(
    out => window.__gfeObserver.observe(out, {childList: true, subtree: true}));
}
"""
)

LATENCY_COLUMNS = ("notebook", "cell", "output", "control", "key", "changed", "output_ms", "redraw_ms")


@dataclass
class SliderResult:
    """What moving one slider of one interactive view did; ``seconds`` runs from the key press to
    the first sight of the changed figure (or to the end of the wait, when it did not change),
    ``output_seconds`` to the first change in the view's Output (the kernel's answer; None if none)."""

    cell: int
    output: int
    label: str
    key: str
    changed: bool
    seconds: float
    output_seconds: float | None = None


@dataclass
class NotebookRun:
    """What the page showed after running a notebook, and the outputs saved from it."""

    name: str
    cells: list[dict] = field(default_factory=list)  # _READ_CELLS_JS
    saved_cells: list[dict] = field(default_factory=list)  # the notebook file's cells after saving
    sliders: list[SliderResult] = field(default_factory=list)
    timed_out: bool = False
    saved: bool = False
    seconds: float = 0.0
    console_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


class NotebookPage:
    """One notebook opened in a Playwright page of a running JupyterLab."""

    def __init__(self, page, server, name: str):
        self.page, self.server, self.name, self.root_dir = page, server, name, server.root_dir
        self.run = NotebookRun(name=name)
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.run.console_errors.append(f"page error: {error}"))

    def _on_console(self, message) -> None:
        if message.type == "error":
            self.run.console_errors.append(message.text[:500])

    # -- opening and running -----------------------------------------------------------------
    def open(self, timeout: float = WAIT_TIMEOUT) -> None:
        """Load JupyterLab on the notebook and wait until its kernel is started and idle."""
        self.page.goto(self.server.notebook_url(self.name), timeout=timeout * 1000)
        self.page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=timeout * 1000)
        if not self._wait_kernel_idle(timeout):
            raise RuntimeError(
                f"the notebook's kernel was not started and idle within {timeout:.0f} s "
                f"(server state: {self._session_state()}; on a loaded machine raise "
                f"GFE_BROWSER_WAIT_TIMEOUT)"
            )
        self._check_dialogs()

    def _session_state(self) -> str | None:
        """The execution state of this notebook's kernel as the server reports it, if any."""
        for session in self.server.api("GET", "/api/sessions"):
            if session.get("path") == self.name and session.get("kernel"):
                return session["kernel"].get("execution_state")
        return None

    def _wait_kernel_idle(self, timeout: float) -> bool:
        """Wait until the server and the page's toolbar both see the kernel idle."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_dialogs()
            if (
                self._session_state() == "idle"
                and self.page.locator(
                    '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator[data-status="idle"]'
                ).count()
            ):
                return True
            time.sleep(0.5)
        return False

    def _check_dialogs(self) -> None:
        """Record and dismiss any modal dialog (kernel choice, errors): it would block the UI."""
        dialogs = self.page.locator(".jp-Dialog")
        for i in range(dialogs.count()):
            text = " ".join(dialogs.nth(i).inner_text().split())
            if text and text not in self.run.dialogs:
                self.run.dialogs.append(text)
        if dialogs.count():
            self.page.keyboard.press("Escape")

    def run_all(self, timeout: float) -> None:
        """Run every cell from the Run menu, then wait until no cell is queued or running.

        Done when the kernel is idle, no prompt shows ``[*]`` and every non-empty code cell has
        an execution count, or an error output stopped the run (JupyterLab then drops the rest
        of the queue). ``timed_out`` records a run that did not finish within ``timeout``.
        """
        start = time.monotonic()
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        self.page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        source = read_complete_json(self.root_dir / self.name)
        code_cells = [i for i, c in enumerate(source["cells"]) if c["cell_type"] == "code" and _source(c).strip()]
        self.page.wait_for_timeout(500)
        deadline = start + timeout
        stable = 0
        while time.monotonic() < deadline:
            self._check_dialogs()
            prompts = {c["index"]: c["prompt"] for c in self.page.evaluate(_READ_CELLS_JS)}
            running = [i for i, p in prompts.items() if p == "[*]:"]
            pending = [i for i in code_cells if not re.fullmatch(r"\[\d+\]:", prompts.get(i, ""))]
            # After an error JupyterLab drops the rest of the queue: those cells stay unnumbered.
            settled = not pending or time.monotonic() - start > 5
            if not running and settled and self._session_state() == "idle":
                stable += 1
                if stable >= 2:  # late display messages (widget views, figures) land first
                    break
            else:
                stable = 0
            time.sleep(1.0)
        else:
            self.run.timed_out = True
        self.run.seconds = time.monotonic() - start
        self._wait_widgets_settled()
        self.run.cells = self.page.evaluate(_READ_CELLS_JS)

    def _wait_widgets_settled(self, timeout: float = 20) -> None:
        """Give widget views and plotly figures a moment to finish drawing after the kernel is idle."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            busy = self.page.evaluate(
                "() => [...document.querySelectorAll('.jp-OutputArea-output')]"
                ".some(o => (o.innerText || '').includes('Loading widget...'))"
                " || [...document.querySelectorAll('.js-plotly-plot')].some(p => !p.querySelector('.main-svg'))"
            )
            if not busy:
                return
            time.sleep(0.5)

    def save(self, timeout: float = WAIT_TIMEOUT) -> None:
        """Save the notebook from the UI and read back the outputs the kernel sent to each cell."""
        path = self.root_dir / self.name
        before = path.stat().st_mtime_ns
        self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook").first.click(position={"x": 5, "y": 5})
        self.page.keyboard.press("Escape")
        self.page.keyboard.press("Control+s")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and path.stat().st_mtime_ns == before:
            self._check_dialogs()
            time.sleep(0.3)
        self.run.saved = path.stat().st_mtime_ns != before
        self.run.saved_cells = read_complete_json(path, timeout=max(10.0, deadline - time.monotonic()))["cells"]

    # -- sliders ------------------------------------------------------------------------------
    def interactive_views(self) -> list[tuple[int, int]]:
        """(cell index, top output index) of each widget output that holds a slider and an Output."""
        views = self.page.evaluate(
            _TOP_OUTPUTS_JS
            + r""".flatMap(([index, k, out]) =>
            out.querySelector('.widget-slider .noUi-handle') && out.querySelector('.widget-output') ? [[index, k]] : [])
        """
        )
        return [tuple(v) for v in views]

    def _mark_slider(self, cell: int, output: int, n: int) -> dict | None:
        """Tag slider ``n`` of a view with ``data-gfe-test="handle"``; its label, value and maximum."""
        return self.page.evaluate(
            r"""([cell, output, n]) => {
            document.querySelectorAll('[data-gfe-test]').forEach(e => e.removeAttribute('data-gfe-test'));
            const found = ("""
            + _TOP_OUTPUTS_JS
            + r""").find(([i, k]) => i === cell && k === output);
            const slider = found ? found[2].querySelectorAll('.widget-slider')[n] : null;
            const handle = slider ? slider.querySelector('.noUi-handle') : null;
            if (!handle) return null;
            handle.setAttribute('data-gfe-test', 'handle');
            const label = slider.querySelector('.widget-label');
            return {label: label ? label.innerText.trim() : '', value: handle.getAttribute('aria-valuenow'),
                    max: handle.getAttribute('aria-valuemax')};
        }""",
            [cell, output, n],
        )

    def move_sliders(self, cell: int, output: int, timeout: float, max_sliders: int = 3) -> None:
        """Step the view's sliders, one at a time, until one of them changes the figure.

        Each step focuses the slider's handle and presses ArrowRight (ArrowLeft when it is at its
        maximum), as a user would from the keyboard; the kernel renders again and the view's
        Output shows a new figure. A step counts as a change when the figures' plotly data or
        layout differ from before within ``timeout`` seconds; the page checks every 50 ms, so the
        time recorded is the input-to-redraw latency to about that. The time until the view's
        Output changed is recorded too: the rest is plotly drawing in the browser. At most
        ``max_sliders`` are tried; each try is added to ``self.run.sliders``.
        """
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        for n in range(max_sliders):
            info = self._mark_slider(cell, output, n)
            if info is None:
                break
            handle = self.page.locator('[data-gfe-test="handle"]')
            before = self.page.evaluate(_FIGURE_FINGERPRINT_JS, [cell, output])
            key = "ArrowLeft" if info["value"] is not None and info["value"] == info["max"] else "ArrowRight"
            handle.scroll_into_view_if_needed()
            handle.focus()
            self.page.evaluate(_WATCH_OUTPUT_JS, [cell, output])
            start = time.monotonic()
            handle.press(key)
            try:
                self.page.wait_for_function(
                    _FIGURE_CHANGED_JS, arg=[cell, output, before], polling=50, timeout=timeout * 1000
                )
                changed = True
            except PlaywrightTimeout:
                changed = False
            seconds = time.monotonic() - start
            output_ms = self.page.evaluate("() => window.__gfeOutputAt")
            self._wait_kernel_idle(timeout=max(5.0, timeout - seconds))
            label = (
                f"{info['label'] or 'slider ' + str(n)!r} ({info['value']} -> {handle.get_attribute('aria-valuenow')})"
            )
            self.run.sliders.append(
                SliderResult(
                    cell, output, label, key, changed, seconds, None if output_ms is None else output_ms / 1000
                )
            )
            if changed:
                break

    # -- screenshot ---------------------------------------------------------------------------
    def screenshot(self, path: Path, max_height: int = 12000) -> None:
        """Save a picture of the whole notebook: the viewport is made as tall as its content."""
        path.parent.mkdir(parents=True, exist_ok=True)
        page = self.page
        viewport = page.viewport_size or {"width": 1400, "height": 1000}
        try:
            extra = page.evaluate(
                "() => { const n ="
                " document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer')"
                " || document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');"
                " return n ? n.scrollHeight - n.clientHeight : 0; }"
            )
            height = min(max_height, viewport["height"] + max(0, int(extra)))
            page.set_viewport_size({"width": viewport["width"], "height": height})
            page.wait_for_timeout(1000)  # let plotly re-lay out its figures
            page.screenshot(path=str(path))
        finally:
            page.set_viewport_size(viewport)


def write_latency(path: Path, run: NotebookRun) -> None:
    """Put the slider moves of ``run`` into the CSV ``path`` (``LATENCY_COLUMNS``), one row per move,
    in place of the rows an earlier run of the same notebook left there; other notebooks' rows stay."""
    rows = []
    if path.exists():
        with path.open(newline="") as file:
            rows = [row for row in csv.DictReader(file) if row["notebook"] != run.name]
    rows += [
        {
            "notebook": run.name,
            "cell": s.cell,
            "output": s.output,
            "control": s.label,
            "key": s.key,
            "changed": s.changed,
            "redraw_ms": round(1000 * s.seconds),
            "output_ms": "" if s.output_seconds is None else round(1000 * s.output_seconds),
        }
        for s in run.sliders
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=LATENCY_COLUMNS)
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda row: (row["notebook"], int(row["cell"]), int(row["output"]))))


def read_complete_json(path: Path, timeout: float = 10.0) -> dict:
    """The JSON content of ``path``, once it parses and is unchanged while it is read.

    The server writes a saved notebook in place, so a read during the write sees a truncated
    file: such reads are repeated until ``timeout``, then the error names the file.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            before = path.stat()
            content = json.loads(path.read_text())
            after = path.stat()
            if (before.st_mtime_ns, before.st_size) == (after.st_mtime_ns, after.st_size):
                return content
            problem = "it changed while being read"
        except (OSError, ValueError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            problem = f"{type(error).__name__}: {error}"
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"could not read {path.name} as complete JSON within {timeout:.0f} s "
                f"(the server may still be writing it): {problem}"
            )
        time.sleep(0.5)


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _first_line(cell: dict) -> str:
    lines = [line for line in _source(cell).splitlines() if line.strip()]
    text = lines[0].strip() if lines else ""
    return text if len(text) <= 60 else text[:57] + "..."


def find_problems(run: NotebookRun) -> list[str]:
    """One line per problem of a notebook run, each naming the cell (index, first source line)."""
    problems: list[str] = []
    saved = run.saved_cells

    def where(index: int) -> str:
        cell = saved[index] if index < len(saved) else {}
        return f"cell {index} ({_first_line(cell)!r})" if cell else f"cell {index}"

    for text in run.dialogs:
        problems.append(f"a dialog appeared: {text[:300]}")
    if not run.cells:
        return problems + ["the page showed no notebook cells"]
    if not run.saved:
        problems.append(
            "saving from the UI (Ctrl+S) did not write the file: the outputs the kernel sent "
            "could not be compared with the page"
        )
    if saved and len(saved) != len(run.cells):
        problems.append(f"the page shows {len(run.cells)} cells, the notebook file has {len(saved)}")
    if run.timed_out:
        still = [c["index"] for c in run.cells if c["prompt"] in ("[*]:",)]
        problems.append(
            f"the run did not finish in time ({run.seconds:.0f} s; raise GFE_BROWSER_RUN_TIMEOUT on a "
            f"loaded machine); still running or queued: {', '.join(where(i) for i in still) or 'none'}"
        )

    first_error = None
    for cell in run.cells:
        i = cell["index"]
        saved_cell = saved[i] if i < len(saved) else {}
        saved_outputs = saved_cell.get("outputs", [])
        # Errors the kernel reported (saved) and tracebacks or failure texts shown on the page.
        for out in saved_outputs:
            if out.get("output_type") == "error":
                first_error = i if first_error is None else first_error
                problems.append(f"{where(i)}: error output {out.get('ename')}: {str(out.get('evalue'))[:300]}")
        kernel_error = any(o.get("output_type") == "error" for o in saved_outputs)  # reported above
        for out in cell["outputs"]:
            text = out["text"]
            if out["mime"] == "application/vnd.jupyter.stderr" and ERROR_TEXT.search(text) and not kernel_error:
                last = [line for line in text.splitlines() if line.strip()][-1:]
                problems.append(
                    f"{where(i)}: an error is shown{' inside a widget Output' if out['nested'] else ''}: "
                    f"{last[0][:300] if last else ''}"
                )
                first_error = i if first_error is None else first_error
            if out["mime"] in (None, WIDGET_MIME):  # a widget view, not text a cell printed
                for failure in WIDGET_FAILURE_TEXTS:
                    if failure in text:
                        problems.append(f"{where(i)}: a widget shows {failure!r} instead of its control")
            if out["mime"] == "text/plain" and WIDGET_REPR.search(text):
                problems.append(f"{where(i)}: a widget is shown as text, not as a control: {text.strip()[:120]!r}")
            if out["widget"] and not out["nested"] and (out["widget"]["error"] or out["widget"]["size"] == [0, 0]):
                problems.append(f"{where(i)}: a widget view rendered as an empty 0x0 box (failed or hidden)")
            plot = out["plot"]
            if plot:
                if plot["noWebgl"]:
                    problems.append(f"{where(i)}: a plotly figure needs WebGL, which the browser lacks")
                elif not plot["svg"] or 0 in plot["svgSize"]:
                    problems.append(f"{where(i)}: a plotly figure has no drawn SVG (size {plot['svgSize']})")
                elif plot["traces"] > 0 and plot["drawn"] == 0:
                    problems.append(f"{where(i)}: a plotly figure with {plot['traces']} trace(s) drew none of them")
        # Outputs the kernel sent must be rendered: every widget view as a control, every figure drawn.
        top = [o for o in cell["outputs"] if not o["nested"]]
        want_widgets = sum(1 for o in saved_outputs if WIDGET_MIME in o.get("data", {}))
        want_plots = sum(
            1 for o in saved_outputs if PLOTLY_MIME in o.get("data", {}) and WIDGET_MIME not in o.get("data", {})
        )
        have_widgets = sum(1 for o in top if o["widget"] and not o["widget"]["error"] and o["widget"]["size"] != [0, 0])
        have_plots = sum(1 for o in top if o["plot"] and o["plot"]["svg"] and not o["widget"])
        if have_widgets < want_widgets:
            problems.append(
                f"{where(i)}: the kernel sent {want_widgets} widget view(s), {have_widgets} rendered as controls"
            )
        if have_plots < want_plots:
            problems.append(f"{where(i)}: the kernel sent {want_plots} plotly figure(s), {have_plots} drawn")
        # An interactive view (slider + Output) must show a drawn figure in its Output.
        for k, out in enumerate(top):
            if out["sliders"] and out["outputWidgets"] and out["widget"]:
                nested_plots = [o for o in cell["outputs"] if o["nested"] and o["plot"]]
                if not nested_plots:
                    problems.append(
                        f"{where(i)}: an interactive view (output {k}) shows no plotly figure in its Output"
                    )

    if first_error is not None:
        skipped = [
            c["index"]
            for c in run.cells
            if c["index"] > first_error
            and c["type"] == "code"
            and c["index"] < len(saved)
            and _source(saved[c["index"]]).strip()
            and c["prompt"] in ("[ ]:", "")
        ]
        if skipped:
            problems.append(f"cells not run after the error in cell {first_error}: {skipped}")
    views: dict[tuple[int, int], list[SliderResult]] = {}
    for slider in run.sliders:
        views.setdefault((slider.cell, slider.output), []).append(slider)
    for (cell, output), tries in views.items():
        if not any(t.changed for t in tries):
            steps = "; ".join(f"{t.key} on {t.label}" for t in tries)
            problems.append(
                f"{where(cell)}: no slider of the interactive view (output {output}) changed the figure "
                f"within {tries[0].seconds:.0f} s ({steps})"
            )
    if problems and run.console_errors:
        problems.append("browser console errors: " + " | ".join(run.console_errors[:5]))
    return problems
