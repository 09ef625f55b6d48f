"""Kernel-side latency of every control of every interactive view in the lessons.

Runs each notebook's code cells in one namespace (from ``notebooks/``, as the kernel would, with
the notebook defaults), finds the :class:`~gfe_viz.viz.interactive.InteractiveView` objects it
built, and for every control sets up to ``--values`` values across its range (the options of a
dropdown or selection slider, evenly spaced points of a numeric slider, both states of a
checkbox), timing ``view.update`` for each; then puts the control back. It prints one row per
control: values tried, median and maximum milliseconds. This is the part of a slider's latency
that the kernel decides (render and serialise the figure); the browser test records the whole
input-to-redraw time. Numbers depend on the machine and its load: run it alone.

    GFE_DATA_DIR=../shared/data python benchmarks/bench_view_latency.py [notebooks/02_amd_solver_lab.ipynb ...]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

from gfe_viz.viz.interactive import InteractiveView

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def notebook_views(path: Path) -> dict[str, InteractiveView]:
    """Run the notebook's code cells and return its views by variable name (``views['mnist']`` for dict entries)."""
    namespace: dict = {"__name__": "__main__"}
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            for cell in cells:
                source = "".join(cell["source"])
                exec(
                    compile(
                        "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))),
                        f"{path.name}",
                        "exec",
                    ),
                    namespace,
                )
    finally:
        os.chdir(cwd)
    found = {}  # id -> (name, view): a loop variable may name a view a dict holds too
    for name, value in namespace.items():
        entries = value.items() if isinstance(value, dict) else [(None, value)]
        for key, view in entries:
            if isinstance(view, InteractiveView):
                found.setdefault(id(view), (name if key is None else f"{name}[{key!r}]", view))
    return dict(found.values())


def values_to_try(control, n: int) -> list:
    """Up to ``n`` values across the control's range, its current value excluded."""
    if hasattr(control, "options"):
        options = [o[1] if isinstance(o, tuple) else o for o in control.options]
        picks = [options[i] for i in np.unique(np.linspace(0, len(options) - 1, n + 1).round().astype(int))]
    elif isinstance(control.value, bool):
        picks = [not control.value]
    elif hasattr(control, "min") and hasattr(control, "max"):
        if hasattr(control, "base"):  # a log slider: min and max are exponents
            picks = list(control.base ** np.linspace(control.min, control.max, n + 1))
        else:
            picks = list(np.linspace(control.min, control.max, n + 1))
        if isinstance(control.value, int):
            picks = [int(round(p)) for p in picks]
    else:
        return []
    return [p for p in picks if p != control.value][:n]


def time_view(view: InteractiveView, n: int) -> list[tuple[str, int, float, float]]:
    rows = []
    for name, control in view.controls.items():
        default, times = control.value, []
        for value in values_to_try(control, n):
            start = time.perf_counter()
            view.update(**{name: value})
            times.append(1000 * (time.perf_counter() - start))
        view.update(**{name: default})
        if times:
            rows.append((name, len(times), statistics.median(times), max(times)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook in notebooks/")
    parser.add_argument("--values", type=int, default=4, help="values tried per control (default: %(default)s)")
    args = parser.parse_args()
    paths = args.notebooks or sorted(NOTEBOOKS.glob("*.ipynb"))
    print(f"{'notebook':32s} {'view':24s} {'control':16s} {'values':>6s} {'median ms':>10s} {'max ms':>8s}")
    for path in paths:
        for view_name, view in notebook_views(path.resolve()).items():
            for control, count, median, worst in time_view(view, args.values):
                print(f"{path.stem:32s} {view_name:24s} {control:16s} {count:6d} {median:10.0f} {worst:8.0f}")


if __name__ == "__main__":
    main()
