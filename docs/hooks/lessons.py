"""The lessons on the static site: executed notebooks whose outputs draw without a kernel.

A notebook run in JupyterLab shows two kinds of output that nbconvert's HTML does not draw:
plotly figures sent as ``application/vnd.plotly.v1+json`` bundles, and ipywidgets views, whose
content lives in the widget state stored in the notebook's metadata. :func:`static_notebook`
turns both into ``text/html`` outputs before mkdocs-jupyter renders the notebook (it never
executes one):

- a figure becomes a ``div`` and the figure's JSON (data, layout and animation frames) in a
  ``<script type="application/json">`` beside it; ``docs/javascripts/figures.js`` draws each
  with ``Plotly.newPlot``, so zoom, hover and an animation's play button and frame slider work;
- a widget view becomes a snapshot of its stored state: the figure its Output showed, its HTML
  lines, a collapsed ``<details>`` for an Accordion (the exercises' solutions), and each control
  with its value, under a note that moving the controls needs the lesson open in JupyterLab.

The rest of this module is the mkdocs hook that serves the converted copies of ``notebooks/``
as ``lessons/*.ipynb`` pages, and plotly.js and MathJax from their installed Python packages:
the site loads nothing from another host.
"""

from __future__ import annotations

import copy
import html
import itertools
import json
import re
import tempfile
from pathlib import Path

import jupyter_server_mathjax
import plotly
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File
from mkdocs.utils import get_relative_url

PLOTLY_MIME = "application/vnd.plotly.v1+json"
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE_MIME = "application/vnd.jupyter.widget-state+json"

# Widget models that lay out others; besides these, HTML, Label and Output models hold content and every
# other model is a control driven by the kernel.
_BOXES = {"VBoxModel", "HBoxModel", "BoxModel", "GridBoxModel"}
_FOLDS = {"AccordionModel", "TabModel", "StackModel"}
# Controls whose value is an index into their option labels.
_SELECTIONS = {"DropdownModel", "RadioButtonsModel", "ToggleButtonsModel", "SelectModel", "SelectionSliderModel"}


def figure_element(figure: dict, element_id: str) -> str:
    """A plotly figure as the page element ``figures.js`` draws: a div and the figure's JSON.

    ``figure`` is the bundle's content (``data``, ``layout``, optional ``frames``); every key is
    kept, so an animation keeps all its frames. ``</`` is written ``<\\/`` (the same JSON), so that
    no string inside the figure can end the script element early.
    """
    if not isinstance(figure, dict) or not isinstance(figure.get("data"), list):
        raise ValueError(f"figure must be a plotly figure dict with a 'data' list, got {str(figure)[:80]!r}")
    if not re.fullmatch(r"[A-Za-z][\w-]*", element_id):
        raise ValueError(f"element_id must be a letter followed by letters, digits, '_' or '-', got {element_id!r}")
    payload = json.dumps(figure, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    return (
        f'<div class="gfe-figure"><div class="gfe-plotly" id="{element_id}"></div>'
        f'<script type="application/json" data-figure-for="{element_id}">{payload}</script></div>'
    )


def lesson_command(readme: str) -> str:
    """The README's command that installs the project and opens the lessons in JupyterLab."""
    for line in readme.splitlines():
        if line.startswith("    ") and "gfe-viz lessons" in line:
            return line.strip()
    raise ValueError("README.md has no indented command line with 'gfe-viz lessons' (the set-up's first command)")


def kernel_note(command: str) -> str:
    """The note under a widget view: its controls need a kernel, and how to get one."""
    return (
        '<div class="gfe-kernel-note"><b>The controls of this view need a running Python kernel.</b> '
        "This page shows them at the values the lesson was run with, and the figure drawn for those. "
        f"To move them, open the lesson in JupyterLab: <code>{html.escape(command)}</code></div>"
    )


class _Snapshot:
    """Renders one widget view from the stored widget state, counting the kernel-driven controls."""

    def __init__(self, state: dict, ids):
        self.state, self.ids, self.controls = state, ids, 0

    def model(self, reference: str) -> str:
        model_id = reference.removeprefix("IPY_MODEL_")
        if model_id not in self.state:
            raise KeyError(
                f"widget model {model_id} is not in the notebook's stored widget state: "
                "re-execute the notebook so that its widget state is saved with it"
            )
        model = self.state[model_id]
        name, values = model["model_name"], model["state"]
        description = values.get("description") or ""
        if name in _BOXES:
            direction = "row" if name == "HBoxModel" else "column"
            return (
                f'<div class="gfe-widget-box gfe-widget-{direction}">'
                + "".join(self.model(child) for child in values.get("children", []))
                + "</div>"
            )
        if name in _FOLDS:
            titles = values.get("titles") or []
            opened = values.get("selected_index")
            parts = []
            for k, child in enumerate(values.get("children", [])):
                title = titles[k] if k < len(titles) and titles[k] else f"part {k + 1}"
                parts.append(
                    f'<details class="gfe-widget-fold"{" open" if opened == k else ""}>'
                    f"<summary>{html.escape(title)}</summary>{self.model(child)}</details>"
                )
            return "".join(parts)
        if name in ("HTMLModel", "HTMLMathModel"):
            label = f"<b>{html.escape(description)}</b> " if description else ""
            return f'<div class="gfe-widget-html">{label}{values.get("value", "")}</div>'
        if name == "LabelModel":
            return f'<div class="gfe-widget-html">{html.escape(str(values.get("value", "")))}</div>'
        if name == "OutputModel":
            return "".join(self.output(out) for out in values.get("outputs", []))
        self.controls += 1
        if name == "ButtonModel":
            return f'<button class="gfe-widget-button" disabled>{html.escape(description)}</button>'
        if name in _SELECTIONS:
            labels, index = values.get("_options_labels", []), values.get("index")
            if name == "RadioButtonsModel":
                chosen = ' class="gfe-chosen"'
                options = "".join(
                    f"<li{chosen if k == index else ''}>{html.escape(label)}</li>" for k, label in enumerate(labels)
                )
                return (
                    f'<div class="gfe-control">{html.escape(description)}<ul class="gfe-options">{options}</ul></div>'
                )
            shown = labels[index] if isinstance(index, int) and 0 <= index < len(labels) else "(none chosen)"
            return self.control(description, shown, f"one of {len(labels)}: " + ", ".join(labels))
        value = values.get("value")
        if name.endswith("SliderModel") and "min" in values:
            low, high = values["min"], values["max"]
            if name == "FloatLogSliderModel":
                base = values.get("base", 10)
                low, high = base**low, base**high
            return self.control(description, _number(value), f"slider from {_number(low)} to {_number(high)}")
        return self.control(description, _number(value), name.removesuffix("Model"))

    @staticmethod
    def control(description: str, value: str, what: str) -> str:
        return (
            f'<span class="gfe-control" title="{html.escape(what)}"><span class="gfe-control-name">'
            f"{html.escape(description)}</span> {html.escape(value)}</span>"
        )

    def output(self, output: dict) -> str:
        """One output held by an Output widget, as HTML."""
        data = output.get("data", {})
        if PLOTLY_MIME in data:
            return figure_element(data[PLOTLY_MIME], next(self.ids))
        if "text/html" in data:
            return _text(data["text/html"])
        text = (
            _text(output.get("text", ""))
            if output.get("output_type") == "stream"
            else _text(data.get("text/plain", ""))
        )
        return f"<pre>{html.escape(text)}</pre>"


def widget_snapshot(model_id: str, state: dict, command: str, ids) -> str:
    """The widget view ``model_id`` drawn from the stored ``state`` (model id -> model), see the module doc.

    ``ids`` yields the element ids of the figures it holds. A view with controls gets the
    :func:`kernel_note` naming ``command``; a view of content alone (a solution to unfold) does not.
    """
    snapshot = _Snapshot(state, ids)
    body = snapshot.model(model_id)
    note = kernel_note(command) if snapshot.controls else ""
    return f'<div class="gfe-widget">{body}{note}</div>'


def static_notebook(notebook: dict, command: str) -> dict:
    """A copy of ``notebook`` whose plotly and widget outputs are ``text/html`` drawn without a kernel.

    Each plotly bundle becomes a :func:`figure_element`, each widget view a :func:`widget_snapshot`
    (with ``command`` in its note), and the stored widget state is dropped from the metadata, so
    that nbconvert loads no widget manager. Other outputs are kept as they are.
    """
    result = copy.deepcopy(notebook)
    widgets = result.get("metadata", {}).pop("widgets", {})
    state = widgets.get(WIDGET_STATE_MIME, {}).get("state", {})
    ids = (f"gfe-figure-{k}" for k in itertools.count(1))
    for cell in result.get("cells", []):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW_MIME in data:
                output["data"] = {"text/html": widget_snapshot(data[WIDGET_VIEW_MIME]["model_id"], state, command, ids)}
            elif PLOTLY_MIME in data:
                output["data"] = {"text/html": figure_element(data[PLOTLY_MIME], next(ids))}
    return result


def _text(value) -> str:
    """A notebook string field, stored as one string or a list of lines."""
    return "".join(value) if isinstance(value, list) else str(value)


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


# --- the mkdocs hook (``hooks:`` in mkdocs.yml) ----------------------------------------------------

_BUILD_DIR = tempfile.TemporaryDirectory(prefix="gfe-site-")
LESSONS = "lessons"  # the site folder of the lesson pages
PLOTLY_JS = "javascripts/plotly.min.js"
MATHJAX_DIR = "javascripts/mathjax"
# with the combined configuration that jupyter-server-mathjax ships (nbconvert's default, TeX-AMS_CHTML-full, it lacks)
MATHJAX_URL = f"{MATHJAX_DIR}/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"
# MathJax's fonts: the STIX-Web web font, the one that copy ships, with 60 s (not 8) to load on a busy machine
# before MathJax falls back to fonts it does not have; its blank test font is taken from the machine (MathJax
# declares it at url(about:blank), which Chromium refuses with a console error); and no hidden MathML copy of
# each formula (assistiveMML), whose \mathcal would load a TeX web font that the copy lacks.
MATHJAX_FONT = (
    '<script type="text/x-mathjax-config">MathJax.Hub.Config({menuSettings: {assistiveMML: false}, '
    '"HTML-CSS": {availableFonts: [], '
    'preferredFont: null, webFont: "STIX-Web", imageFont: null, styles: {"@font-face": '
    '{"font-family": "MathJax_Blank", src: "local(\'MathJax_Blank\')"}}}});'
    'MathJax.Hub.Register.StartupHook("HTML-CSS Jax Ready", function () {'
    ' MathJax.OutputJax["HTML-CSS"].Font.timeout = 60000; });</script>'
)


def _repository(config) -> Path:
    return Path(config.config_file_path).resolve().parent


@event_priority(100)  # before mkdocs-jupyter's on_files, which must see the lesson files
def on_files(files, config):
    """Add the converted lessons, plotly.js and MathJax to the site's files."""
    root = _repository(config)
    command = lesson_command((root / "README.md").read_text(encoding="utf-8"))
    build = Path(_BUILD_DIR.name)  # a docs folder of its own (mkdocs-jupyter reads a lesson from src_dir)
    (build / LESSONS).mkdir(exist_ok=True)
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        (build / LESSONS / path.name).write_text(json.dumps(static_notebook(notebook, command)), encoding="utf-8")
        files.append(
            File(
                f"{LESSONS}/{path.name}",
                src_dir=str(build),
                dest_dir=config.site_dir,
                use_directory_urls=config.use_directory_urls,
            )
        )
    files.append(
        File.generated(
            config, PLOTLY_JS, abs_src_path=str(Path(plotly.__file__).parent / "package_data" / "plotly.min.js")
        )
    )
    mathjax = Path(jupyter_server_mathjax.__file__).parent / "static"
    for path in sorted(p for p in mathjax.rglob("*") if p.is_file()):
        files.append(
            File.generated(config, f"{MATHJAX_DIR}/{path.relative_to(mathjax).as_posix()}", abs_src_path=str(path))
        )
    return files


_LESSON_LINK = re.compile(r'href="([\w-]+\.ipynb)(#[^"]*)?"')


def on_page_content(content: str, page, config, files) -> str:
    """Links from one lesson to another (``href="02_amd_solver_lab.ipynb"``, as in JupyterLab) point at its page."""
    if not page.file.src_uri.startswith(LESSONS + "/"):
        return content

    def to_page(match: re.Match) -> str:
        target = files.get_file_from_path(f"{LESSONS}/{match.group(1)}")
        if target is None:
            raise ValueError(f"{page.file.src_uri} links to {match.group(1)}, which is not a notebook in notebooks/")
        return f'href="{get_relative_url(target.url, page.url)}{match.group(2) or ""}"'

    return _LESSON_LINK.sub(to_page, content)


def on_config(config):
    """Have mkdocs-jupyter load MathJax from the site's copy (its default is none: the formulas stay raw TeX)."""
    config.plugins["mkdocs-jupyter"].config["custom_mathjax_url"] = MATHJAX_URL
    return config


def on_post_page(output: str, page, config) -> str:
    """Point a lesson page's MathJax script at the site's copy, relative to the page (the site may live in a
    folder), and have it use the one web font that copy ships."""
    path, _, query = MATHJAX_URL.partition("?")
    local = f'<script src="{get_relative_url(path, page.url)}?{query}"> </script>'
    return output.replace(f'<script src="{MATHJAX_URL}"> </script>', local + MATHJAX_FONT)


def on_serve(server, config, builder):
    """``mkdocs serve`` rebuilds when a notebook or the README changes."""
    root = _repository(config)
    server.watch(str(root / "notebooks"))
    server.watch(str(root / "README.md"))
    return server
