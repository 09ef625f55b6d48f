"""The site's conversion of notebook outputs (docs/hooks/lessons.py), without a browser.

A plotly figure must reach the page whole (its data, layout and every animation frame), and a
widget view must show what its stored state holds: the figure of its Output, its controls at
their values, and the note that moving them needs JupyterLab.
"""

import importlib.util
import json
import re
from pathlib import Path

import plotly.graph_objects as go
import pytest
from bs4 import BeautifulSoup

from gfe_viz.viz.interactive import figure_output

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("site_lessons", ROOT / "docs" / "hooks" / "lessons.py")
lessons = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lessons)

COMMAND = "pip install -e . && gfe-viz lessons"


def drawn_figures(html: str) -> dict[str, dict]:
    """element id -> the figure the page draws there, parsed back from the page's HTML."""
    soup = BeautifulSoup(html, "html.parser")
    figures = {}
    for div in soup.select("div.gfe-plotly"):
        scripts = soup.select(f'script[type="application/json"][data-figure-for="{div["id"]}"]')
        assert len(scripts) == 1, f"figure {div['id']} has {len(scripts)} data scripts"
        figures[div["id"]] = json.loads(scripts[0].string)
    return figures


def animation() -> go.Figure:
    """Three frames behind a play button and a slider; a trace name that would end a script element."""
    frames = [go.Frame(name=str(k), data=[go.Scatter(x=[0, 1], y=[k, k * k])]) for k in range(3)]
    figure = go.Figure(data=[go.Scatter(x=[0, 1], y=[0, 0], name="</script><b>x</b>")], frames=frames)
    figure.update_layout(
        updatemenus=[{"type": "buttons", "buttons": [{"label": "play", "method": "animate", "args": [None]}]}],
        sliders=[{"steps": [{"label": str(k), "method": "animate", "args": [[str(k)]]} for k in range(3)]}],
    )
    return figure


def test_a_figure_bundle_becomes_an_element_whose_figure_equals_it():
    bundle = figure_output(animation())["data"][lessons.PLOTLY_MIME]
    html = lessons.figure_element(bundle, "fig-1")
    assert "</script><b>" not in html  # the trace name cannot close the data script early
    assert drawn_figures(html) == {"fig-1": bundle}
    assert [frame["data"][0]["y"] for frame in drawn_figures(html)["fig-1"]["frames"]] == [[0, 0], [1, 1], [2, 4]]


@pytest.mark.parametrize(
    "figure, element_id, message",
    [
        ({"layout": {}}, "fig", "figure must be a plotly figure dict with a 'data' list"),
        ({"data": []}, "1fig", "element_id must be a letter followed by"),
        ({"data": []}, 'a" onload="x', "element_id must be a letter followed by"),
    ],
)
def test_figure_element_refuses_what_it_cannot_draw(figure, element_id, message):
    with pytest.raises(ValueError, match=message):
        lessons.figure_element(figure, element_id)


def widget_state(models: dict[str, tuple[str, dict]]) -> dict:
    return {model_id: {"model_name": name, "state": state} for model_id, (name, state) in models.items()}


def test_a_view_shows_its_outputs_figure_its_controls_and_the_kernel_note():
    bundle = figure_output(animation())["data"][lessons.PLOTLY_MIME]
    state = widget_state(
        {
            "box": ("VBoxModel", {"children": ["IPY_MODEL_bar", "IPY_MODEL_out", "IPY_MODEL_line"]}),
            "bar": ("HBoxModel", {"children": ["IPY_MODEL_tau", "IPY_MODEL_solver"]}),
            "tau": (
                "FloatLogSliderModel",
                {"description": "tau", "value": 1000.0, "min": 1.0, "max": 4.0, "base": 10.0},
            ),
            "solver": ("DropdownModel", {"description": "solver", "_options_labels": ["amd", "rk4"], "index": 1}),
            "out": (
                "OutputModel",
                {"outputs": [{"output_type": "display_data", "data": {lessons.PLOTLY_MIME: bundle}}]},
            ),
            "line": ("HTMLModel", {"value": "<b>loss</b> = 0.25"}),
        }
    )
    html = lessons.widget_snapshot("box", state, COMMAND, iter(["view-fig"]))
    soup = BeautifulSoup(html, "html.parser")
    assert drawn_figures(html) == {"view-fig": bundle}
    controls = [" ".join(c.get_text().split()) for c in soup.select(".gfe-control")]
    assert controls == ["tau 1000", "solver rk4"]
    assert "from 10 to 10000" in soup.select(".gfe-control")[0]["title"]
    assert "<b>loss</b> = 0.25" in html
    assert COMMAND in soup.select_one(".gfe-kernel-note").get_text()


def test_a_solution_to_unfold_is_a_closed_details_element_without_the_note():
    state = widget_state(
        {
            "fold": (
                "AccordionModel",
                {"children": ["IPY_MODEL_code"], "titles": ["solution of step"], "selected_index": None},
            ),
            "code": ("HTMLModel", {"value": "<pre>def step(): ...</pre>"}),
        }
    )
    soup = BeautifulSoup(lessons.widget_snapshot("fold", state, COMMAND, iter([])), "html.parser")
    details = soup.select("details")
    assert len(details) == 1 and not details[0].has_attr("open")
    assert details[0].summary.get_text() == "solution of step" and details[0].pre.get_text() == "def step(): ..."
    assert soup.select(".gfe-kernel-note") == []


def test_a_view_missing_from_the_stored_state_names_the_fix():
    with pytest.raises(KeyError, match="abc is not in the notebook's stored widget state: re-execute"):
        lessons.widget_snapshot("abc", {}, COMMAND, iter([]))


def plotly_bundles(notebook: dict) -> list[dict]:
    """Every plotly figure a notebook holds: cell outputs, then the outputs kept by Output widgets."""
    cells = [
        out["data"][lessons.PLOTLY_MIME]
        for cell in notebook["cells"]
        for out in cell.get("outputs", [])
        if lessons.PLOTLY_MIME in out.get("data", {})
    ]
    state = notebook["metadata"]["widgets"][lessons.WIDGET_STATE_MIME]["state"]
    held = [
        out["data"][lessons.PLOTLY_MIME]
        for model in state.values()
        if model["model_name"] == "OutputModel"
        for out in model["state"]["outputs"]
        if lessons.PLOTLY_MIME in out.get("data", {})
    ]
    return cells + held


@pytest.mark.parametrize("name", ["01_gradient_flow_2d.ipynb", "07_dynamical_truncation.ipynb"])
def test_a_committed_lesson_keeps_every_figure_and_replaces_every_widget_view(name):
    notebook = json.loads((ROOT / "notebooks" / name).read_text())
    static = lessons.static_notebook(notebook, COMMAND)
    assert "widgets" in notebook["metadata"] and "widgets" not in static["metadata"]
    html_outputs, views = [], 0
    for before, after in zip(notebook["cells"], static["cells"]):
        for old, new in zip(before.get("outputs", []), after.get("outputs", [])):
            views += lessons.WIDGET_VIEW_MIME in old.get("data", {})
            if lessons.WIDGET_VIEW_MIME in old.get("data", {}) or lessons.PLOTLY_MIME in old.get("data", {}):
                assert list(new["data"]) == ["text/html"]
                html_outputs.append(new["data"]["text/html"])
            else:
                assert new == old
    figures = drawn_figures("".join(html_outputs))
    wanted = plotly_bundles(notebook)
    assert len(figures) == len(wanted) and all(figure in wanted for figure in figures.values())
    assert any(figure.get("frames") for figure in figures.values())  # the lesson's animation, with its frames
    notes = "".join(html_outputs).count('class="gfe-kernel-note"')
    assert 0 < notes < views  # the interactive views have one, the solutions to unfold do not


def test_the_note_names_the_readmes_first_command():
    readme = (ROOT / "README.md").read_text()
    command = lessons.lesson_command(readme)
    first = next(line.strip() for line in readme.splitlines() if re.match(r"    \S", line))
    assert command == first and command.endswith("gfe-viz lessons")
    with pytest.raises(ValueError, match="README.md has no indented command line with 'gfe-viz lessons'"):
        lessons.lesson_command("# a readme\n\n    pip install .\n")


def test_the_sites_navigation_lists_every_lesson():
    """Each notebook of notebooks/ is a lesson page in mkdocs.yml's navigation, and nothing else is."""
    import yaml

    lessons_nav = next(
        entry["Lessons"]
        for entry in yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]
        if isinstance(entry, dict) and "Lessons" in entry
    )
    assert lessons_nav == [f"{lessons.LESSONS}/{p.name}" for p in sorted((ROOT / "notebooks").glob("*.ipynb"))]
