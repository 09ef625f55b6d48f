"""The shared interactive-view pattern: controls re-render one figure, shown in an Output, with a summary."""

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import pytest

from gfe_viz.viz.interactive import (
    SLIDER_ROOM,
    control_choices,
    figure_output,
    format_summary,
    interactive_view,
    precomputed_figure,
)


def make_view(**options):
    calls = []

    def render(scale, kind):
        calls.append((scale, kind))
        figure = go.Figure(go.Scatter(x=[0, 1, 2], y=[0, scale, 2 * scale], name=kind))
        return figure, {"scale": float(scale), "points": 3}

    controls = {"scale": widgets.FloatSlider(value=1.0, min=0.0, max=5.0), "kind": widgets.Dropdown(options=["a", "b"])}
    return interactive_view(render, controls, **options), calls


def test_builds_the_first_figure_and_shows_it_in_the_output():
    view, calls = make_view()
    assert calls == [(1.0, "a")]
    assert list(view.figure.data[0].y) == [0, 1.0, 2.0]
    (shown,) = view.output.outputs
    assert shown["output_type"] == "display_data"
    assert shown["data"]["application/vnd.plotly.v1+json"]["data"][0]["name"] == "a"
    assert view.summary == {"scale": 1.0, "points": 3}
    assert "scale" in view.summary_line.value
    assert view.widget.children[1] is view.output


def test_moving_a_control_re_renders_with_all_current_values():
    view, calls = make_view()
    view.controls["scale"].value = 2.5
    assert calls[-1] == (2.5, "a")
    assert list(view.figure.data[0].y) == [0, 2.5, 5.0]
    assert view.output.outputs[0]["data"]["application/vnd.plotly.v1+json"]["data"][0]["y"] == [0, 2.5, 5.0]
    view.controls["kind"].value = "b"
    assert calls[-1] == (2.5, "b") and view.figure.data[0].name == "b"


def test_update_sets_several_controls_and_renders_once():
    view, calls = make_view()
    view.update(scale=4.0, kind="b")
    assert calls[1:] == [(4.0, "b")]
    assert view.controls["scale"].value == 4.0 and view.values == {"scale": 4.0, "kind": "b"}
    assert view.report() == "scale=4, points=3"


def test_a_setting_seen_before_is_shown_again_without_rendering():
    view, calls = make_view(cache_size=2)
    first = view.output.outputs[0]
    view.update(scale=2.0)
    view.update(scale=1.0)  # back to the first setting: from the cache
    assert calls == [(1.0, "a"), (2.0, "a")]
    assert view.output.outputs[0] == first and list(view.figure.data[0].y) == [0, 1.0, 2.0]
    assert view.summary == {"scale": 1.0, "points": 3}
    view.update(scale=3.0)  # a third setting pushes out the least recently shown (scale 2)
    view.update(scale=2.0)
    assert calls[-2:] == [(3.0, "a"), (2.0, "a")]
    fresh, fresh_calls = make_view(cache_size=0)
    fresh.update(scale=2.0)
    fresh.update(scale=1.0)
    assert fresh_calls == [(1.0, "a"), (2.0, "a"), (1.0, "a")]
    assert fresh.output.outputs[0] == first  # a cached render shows what a fresh one does
    with pytest.raises(ValueError, match="cache_size must be an integer >= 0, got -1"):
        make_view(cache_size=-1)


def test_settings_with_the_same_key_share_one_render():
    def key(values):  # kind "b" draws the same figure at every scale
        return values["kind"], values["scale"] if values["kind"] == "a" else None

    view, calls = make_view(key=key)
    view.update(kind="b")
    shown = view.output.outputs[0]
    view.update(scale=3.0)
    assert calls == [(1.0, "a"), (1.0, "b")] and view.output.outputs[0] == shown
    assert view.values == {"scale": 3.0, "kind": "b"}
    view.update(kind="a")  # kind "a" tells the scales apart
    assert calls[-1] == (3.0, "a") and list(view.figure.data[0].y) == [0, 3.0, 6.0]
    with pytest.raises(TypeError, match="key must be None or a callable taking the control values, got str"):
        make_view(key="scale")


def test_prerender_fills_the_cache_at_every_option_and_keeps_the_figure_shown():
    view, calls = make_view()
    shown, summary = view.output.outputs[0], view.summary_line.value
    view.prerender("kind")
    assert calls == [(1.0, "a"), (1.0, "b")]  # "a" was in the cache already
    assert view.output.outputs[0] == shown and view.summary_line.value == summary
    view.update(kind="b")
    assert len(calls) == 2 and view.figure.data[0].name == "b"
    view.prerender("scale", [2.0, 3.0])
    assert calls[2:] == [(2.0, "b"), (3.0, "b")]
    view.update(scale=float(np.nextafter(3.0, 4.0)))  # 3 but for the last bit, as a browser may send it
    assert len(calls) == 4 and list(view.figure.data[0].y) == [0, 3.0, 6.0]
    small, _ = make_view(cache_size=1)
    with pytest.raises(ValueError, match="prerendering 2 settings of 'kind' needs cache_size >= 2, got 1"):
        small.prerender("kind")
    with pytest.raises(ValueError, match="control 'scale' must be a selection, an IntSlider or a FloatLogSlider"):
        view.prerender("scale")
    log = widgets.FloatLogSlider(value=100.0, base=10, min=1, max=3, step=1)
    logged = interactive_view(lambda tau: (go.Figure(), {"tau": tau}), {"tau": log})
    assert control_choices(logged, "tau") == [("10", 10.0), ("100", 100.0), ("1000", 1000.0)]


def test_reset_shows_the_settings_the_view_was_built_with():
    view, calls = make_view()
    first = view.output.outputs[0]
    view.update(scale=4.0, kind="b")
    view.reset()
    assert view.values == {"scale": 1.0, "kind": "a"} and view.output.outputs[0] == first
    assert view.summary == {"scale": 1.0, "points": 3}


def test_the_summary_line_says_computing_while_a_render_runs():
    from gfe_viz.viz.interactive import COMPUTING

    views, seen = [], []

    def render(x):
        if views:
            seen.append(views[0].summary_line.value)
        return go.Figure(), {"x": x}

    views.append(interactive_view(render, {"x": widgets.IntSlider(value=1, min=0, max=5)}))
    views[0].update(x=2)
    assert seen == [COMPUTING] and views[0].summary_line.value == "<b>x</b> = 2"
    views[0].update(x=1)  # from the cache: no render, so no "computing"
    assert seen == [COMPUTING] and views[0].summary_line.value == "<b>x</b> = 1"


def test_sliders_render_only_when_released():
    view, _ = make_view()
    assert view.controls["scale"].continuous_update is False


def test_bad_arguments_name_the_problem():
    view, _ = make_view()
    with pytest.raises(TypeError, match="unknown control.*'tau'"):
        view.update(tau=3.0)
    with pytest.raises(ValueError, match="controls must be a non-empty dict"):
        interactive_view(lambda: (go.Figure(), {}), {})
    with pytest.raises(TypeError, match=r"controls\['x'\] must be an ipywidgets value widget, got int"):
        interactive_view(lambda x: (go.Figure(), {}), {"x": 3})
    with pytest.raises(TypeError, match="render must be a callable"):
        interactive_view("render", {"x": widgets.IntSlider()})
    with pytest.raises(TypeError, match="render must return .* got dict"):
        interactive_view(lambda x: ({}, {}), {"x": widgets.IntSlider()})


def test_figure_output_is_json_without_plotly_js():
    output = figure_output(go.Figure(go.Bar(x=[1, 2], y=[3, 4])))
    assert set(output["data"]) == {"application/vnd.plotly.v1+json"}
    assert output["data"]["application/vnd.plotly.v1+json"]["data"][0]["type"] == "bar"


def test_format_summary_rounds_to_significant_digits():
    summary = {"loss": 0.123456, "nfe": 41, "status": "converged"}
    assert format_summary(summary) == "loss=0.1235, nfe=41, status=converged"
    assert format_summary({"loss": 1234.5678}, digits=3) == "loss=1.23e+03"
    assert format_summary({"a": 1.0}, html=True) == "<b>a</b> = 1"


def stepped_view():
    """A view over a discrete ``n`` (a selection slider) and a continuous ``scale``; its title names both."""

    def render(n, scale):
        figure = go.Figure([go.Scatter(x=[0, 1], y=[0, 1], name="fixed"), go.Scatter(x=[0, 1], y=[n, n * scale])])
        figure.update_layout(title=f"n={n}, scale={scale:g}", height=300)
        return figure, {"n": n}

    controls = {
        "n": widgets.SelectionSlider(options=[1, 2, 5], value=2, description="images"),
        "scale": widgets.FloatSlider(value=1.0, min=0.0, max=5.0),
    }
    return interactive_view(render, controls)


def test_a_precomputed_figure_holds_the_view_at_every_value_behind_its_own_slider():
    view = stepped_view()
    view.controls["scale"].value = 3.0  # the other controls keep their current values
    line = view.summary_line.value
    figure = precomputed_figure(view, "n")
    assert [frame.name for frame in figure.frames] == ["1", "2", "5"]
    # each frame holds what changes (trace 1, the title), not the fixed trace nor the height
    assert [list(frame.traces) for frame in figure.frames] == [[1], [1], [1]]
    assert [list(frame.data[0].y) for frame in figure.frames] == [[1, 3], [2, 6], [5, 15]]
    assert [frame.layout.title.text for frame in figure.frames] == ["n=1, scale=3", "n=2, scale=3", "n=5, scale=3"]
    assert all(frame.layout.height is None for frame in figure.frames)
    assert [trace.name for trace in figure.data] == ["fixed", None]
    assert (
        list(figure.data[1].y) == [2, 6] and figure.layout.title.text == "n=2, scale=3"
    )  # starts at the current value
    (slider,) = figure.layout.sliders
    assert slider.active == 1 and slider.currentvalue.prefix == "images: "
    # below the figure as it was (300 px, plotly's margins t 100 and b 80 around 120 px of plots), in room added for it
    assert figure.layout.height == 300 + SLIDER_ROOM and figure.layout.margin.b == 80 + SLIDER_ROOM
    assert slider.yanchor == "top" and slider.y == pytest.approx(-80 / 120)
    assert [(s.label, s.method, list(s.args[0])) for s in slider.steps] == [
        (k, "animate", [k]) for k in ("1", "2", "5")
    ]
    assert view.values == {"n": 2, "scale": 3.0} and view.summary_line.value == line  # the view is left as it was


def test_an_int_slider_is_precomputed_at_each_of_its_steps():
    view = interactive_view(
        lambda k: (go.Figure(go.Bar(y=[k])), {}), {"k": widgets.IntSlider(value=4, min=0, max=6, step=2)}
    )
    figure = precomputed_figure(view, "k")
    assert [frame.name for frame in figure.frames] == ["0", "2", "4", "6"] and figure.layout.sliders[0].active == 2


def test_precomputed_figure_refuses_what_it_cannot_precompute():
    view = stepped_view()
    with pytest.raises(ValueError, match=r"control must be one of the view's controls \['n', 'scale'\], got 'tau'"):
        precomputed_figure(view, "tau")
    with pytest.raises(
        ValueError,
        match="control 'scale' must be a selection, an IntSlider or a FloatLogSlider to go through its values,"
        " got a FloatSlider",
    ):
        precomputed_figure(view, "scale")
    with pytest.raises(ValueError, match="control 'n' has 3 values, more than max_values=2"):
        precomputed_figure(view, "n", max_values=2)
    growing = interactive_view(
        lambda n: (go.Figure([go.Scatter(y=[i]) for i in range(n)]), {}), {"n": widgets.Dropdown(options=[1, 2])}
    )
    with pytest.raises(ValueError, match=r"draws \[1, 2\] traces at different values of 'n'"):
        precomputed_figure(growing, "n")
    animated = interactive_view(
        lambda n: (go.Figure(go.Scatter(y=[n]), frames=[go.Frame(data=[go.Scatter(y=[0])])]), {}),
        {"n": widgets.Dropdown(options=[1, 2])},
    )
    with pytest.raises(ValueError, match="an animation already"):
        precomputed_figure(animated, "n")
