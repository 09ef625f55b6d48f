"""The lessons' static site as a reader meets it: built with ``mkdocs build --strict``, opened in Chromium.

Every page of the site's navigation (mkdocs.yml) is loaded from ``python -m http.server`` on
loopback and checked:

- no console error, page error, failed request or HTTP error (the site loads nothing from
  another host, so a script or style fetched from elsewhere fails here);
- every plotly figure is drawn (``.js-plotly-plot .main-svg``), and each lesson page has one;
- MathJax typesets the formulas of each lesson that has some;
- every animation (frames behind a slider): a click on another step of its frame slider changes
  the figure's data, with no kernel behind the page;
- every link to another page of the site answers 200.

A screenshot of a page that fails goes to ``artifacts/browser/site/<page>.png``.
"""

from __future__ import annotations

import json
import time
import urllib.parse

import pytest
import yaml

from .settings import ARTIFACTS_DIR, REPO_ROOT, SLIDER_TIMEOUT, WAIT_TIMEOUT

pytestmark = pytest.mark.browser
VIEWPORT = {"width": 1400, "height": 1000}


def nav_pages(config: dict) -> list[str]:
    """The source paths of the pages in mkdocs.yml's ``nav``, in order."""
    pages = []

    def walk(entries):
        for entry in entries:
            value = next(iter(entry.values())) if isinstance(entry, dict) else entry
            if isinstance(value, list):
                walk(value)
            else:
                pages.append(value)

    walk(config["nav"])
    return pages


def page_url(source: str) -> str:
    """The site path of a page (directory URLs): ``index.md`` -> ``""``, ``api/x.md`` -> ``api/x/``."""
    stem = source.rsplit(".", 1)[0]
    return "" if stem == "index" else stem.removesuffix("/index") + "/"


def lesson_text(source: str) -> str:
    """The markdown cells of the notebook behind lesson page ``source`` (``lessons/<name>.ipynb``)."""
    notebook = json.loads((REPO_ROOT / "notebooks" / source.removeprefix("lessons/")).read_text())
    return "".join("".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "markdown")


PAGES = nav_pages(yaml.safe_load((REPO_ROOT / "mkdocs.yml").read_text()))

# Per figure: its element id, whether plotly drew it, and whether it is an animation with a slider.
_FIGURES_JS = r"""
() => [...document.querySelectorAll('script[data-figure-for]')].map(script => {
  const div = document.getElementById(script.dataset.figureFor);
  const figure = JSON.parse(script.textContent);
  return {
    id: script.dataset.figureFor,
    drawn: div !== null && div.matches('.js-plotly-plot') && div.querySelector('.main-svg') !== null,
    animation: (figure.frames || []).length > 1 && ((figure.layout || {}).sliders || []).length > 0,
  };
})
"""

# A fingerprint of what figure `id` shows: its current trace data and its slider's active step.
_FINGERPRINT_JS = r"""
(id) => {
  const div = document.getElementById(id);
  const text = JSON.stringify([div.data, (div.layout.sliders || []).map(s => s.active)]);
  let hash = 5381;
  for (let i = 0; i < text.length; i++) hash = ((hash * 33) ^ text.charCodeAt(i)) >>> 0;
  return text.length + ':' + hash;
}
"""

_checked_links: dict[str, int] = {}  # link -> HTTP status, shared by the pages


def step_slider(page, element_id: str) -> bool:
    """Click the frame slider's rail of figure ``element_id`` at another step; did the figure change?

    The step clicked is the leftmost one clear of the slider's grip: on the left, a figure wider
    than the page's column is never cut off.
    """
    plot = page.locator(f"#{element_id}")
    plot.scroll_into_view_if_needed()
    before = page.evaluate(_FINGERPRINT_JS, element_id)
    active = page.evaluate("(id) => document.getElementById(id).layout.sliders[0].active || 0", element_id)
    ticks = [
        box["x"] + box["width"] / 2 for box in (tick.bounding_box() for tick in plot.locator(".slider-tick-rect").all())
    ]
    target = next(x for x in ticks if abs(x - ticks[active]) > 30)  # clear of the grip, which a click would only grab
    rail = plot.locator(".slider-rail-touch-rect").first.bounding_box()
    page.mouse.click(target, rail["y"] + rail["height"] / 2)
    deadline = time.monotonic() + SLIDER_TIMEOUT
    while time.monotonic() < deadline:
        if page.evaluate(_FINGERPRINT_JS, element_id) != before:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.timeout(2 * WAIT_TIMEOUT + 4 * SLIDER_TIMEOUT)  # a backstop: each wait has its own limit
@pytest.mark.parametrize("source", PAGES, ids=[page_url(p).strip("/") or "home" for p in PAGES])
def test_site_page_renders_in_chromium(source, browser, site):
    """Open one page of the built site and check it (see the module docstring)."""
    url = urllib.parse.urljoin(site.base_url, page_url(source))
    page = browser.new_page(viewport=VIEWPORT)
    problems: list[str] = []
    page.on(
        "console", lambda message: message.type == "error" and problems.append(f"console error: {message.text[:300]}")
    )
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("requestfailed", lambda request: problems.append(f"request failed: {request.url} ({request.failure})"))
    page.on(
        "response",
        lambda response: response.status >= 400 and problems.append(f"HTTP {response.status}: {response.url}"),
    )
    try:
        response = page.goto(url, wait_until="load", timeout=WAIT_TIMEOUT * 1000)
        assert response is not None and response.status == 200, f"{url} answered {response and response.status}"
        try:
            page.wait_for_function(
                "() => [...document.querySelectorAll('div.gfe-plotly')].every(div => div.querySelector('.main-svg'))",
                timeout=WAIT_TIMEOUT * 1000,
            )
        except Exception:
            pass  # the figures not drawn are named below
        figures = page.evaluate(_FIGURES_JS)
        problems += [f"figure {f['id']} is not drawn (no .js-plotly-plot .main-svg)" for f in figures if not f["drawn"]]
        if source.endswith(".ipynb") and not figures:
            problems.append("a lesson page with no plotly figure")
        if source.endswith(".ipynb") and "$" in lesson_text(source):
            try:
                page.wait_for_function(
                    "() => document.querySelectorAll('.MathJax, .MathJax_Display').length > 0",
                    timeout=WAIT_TIMEOUT * 1000,
                )
            except Exception:
                problems.append("MathJax typeset no formula, though the lesson's text has TeX in it")
        for figure in figures:
            if figure["drawn"] and figure["animation"] and not step_slider(page, figure["id"]):
                problems.append(
                    f"animation {figure['id']}: a click on its frame slider did not change the figure "
                    f"within {SLIDER_TIMEOUT:.0f} s"
                )
        links = page.evaluate("() => [...document.querySelectorAll('a[href]')].map(a => a.href)")
        for link in {link.split("#")[0] for link in links if link.startswith(site.base_url)}:
            if link not in _checked_links:
                _checked_links[link] = page.request.get(link).status
            if _checked_links[link] != 200:
                problems.append(f"a link to {link} answers HTTP {_checked_links[link]}")
        if problems:
            shot = ARTIFACTS_DIR / "site" / f"{page_url(source).strip('/').replace('/', '_') or 'home'}.png"
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=True)
            problems.append(f"screenshot: {shot}")
    finally:
        page.close()
    assert not problems, f"{url} ({source}): {len(problems)} problem(s)\n" + "\n".join(f"  - {p}" for p in problems)
