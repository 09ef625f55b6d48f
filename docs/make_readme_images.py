"""The README's images: the figure each lesson view showed when its notebook was last run, as PNG.

Takes the first plotly figure held by a widget Output in the notebook's stored widget state (the
view after Run All, drawn by the package's figure builders), draws it with the installed plotly.js
in headless Chromium (no network needed), an animation at its last frame (the solve's end), and
saves a screenshot under ``docs/images/``. Run from the
repository root after re-executing the notebooks:

    python docs/make_readme_images.py
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright
from plotly.offline import get_plotlyjs

REPO = Path(__file__).resolve().parents[1]
IMAGES = {"trajectory.png": "notebooks/01_gradient_flow_2d.ipynb", "amd_lab.png": "notebooks/02_amd_solver_lab.ipynb"}
PLOTLY_MIME = "application/vnd.plotly.v1+json"
WIDGET_STATE_MIME = "application/vnd.jupyter.widget-state+json"


def stored_view_figure(notebook: Path) -> dict:
    """The first plotly figure shown in a widget Output of the notebook's stored widget state."""
    state = json.loads(notebook.read_text())["metadata"].get("widgets", {}).get(WIDGET_STATE_MIME, {}).get("state", {})
    for model in state.values():
        for output in model["state"].get("outputs", []) if model["model_name"] == "OutputModel" else []:
            if PLOTLY_MIME in output.get("data", {}):
                return output["data"][PLOTLY_MIME]
    raise ValueError(
        f"{notebook} stores no widget Output with a plotly figure: re-execute it "
        f"(jupyter nbconvert --to notebook --execute --inplace {notebook.name})"
    )


def main() -> None:
    with sync_playwright() as p, tempfile.TemporaryDirectory() as tmp:
        browser = p.chromium.launch(
            executable_path=os.environ.get("GFE_CHROMIUM", "/usr/bin/chromium"),
            args=["--headless", "--no-sandbox", "--disable-gpu"],
        )
        for name, notebook in IMAGES.items():
            figure = stored_view_figure(REPO / notebook)
            layout = figure.get("layout", {})
            page = browser.new_page(viewport={"width": layout.get("width", 1000), "height": layout.get("height", 700)})
            last = json.dumps([figure["frames"][-1]["name"]] if figure.get("frames") else [])
            html = Path(tmp) / "figure.html"
            html.write_text(
                f"<html><body style='margin:0;background:white'><div id='figure'></div>"
                f"<script>{get_plotlyjs()}</script><script>"
                f"Plotly.newPlot('figure', {json.dumps(figure)})"
                f".then(() => {last}.length ? Plotly.animate('figure', {last}, "
                f"{{mode: 'immediate', frame: {{duration: 0, redraw: true}}, transition: {{duration: 0}}}}) : null)"
                f".then(() => {{ window.drawn = true; }});"
                f"</script></body></html>"
            )
            page.goto(html.as_uri())
            page.wait_for_function("window.drawn === true")
            page.locator("#figure").screenshot(path=REPO / "docs" / "images" / name)
            page.close()
            print(f"docs/images/{name} from {notebook}")
        browser.close()


if __name__ == "__main__":
    main()
