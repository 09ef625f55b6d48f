"""One pattern for every interactive lesson view: controls that redraw one plotly figure in place.

A view is a ``render`` function plus named controls. ``render(**values)`` receives the current
value of every control and returns ``(figure, summary)``: the ``go.Figure`` to show and a dict of
the numbers it is about (final loss, NFE, ...). Changing a control, by hand or from code
(``view.controls["tau"].value = 50.0``), calls :meth:`InteractiveView.update`, which renders
again and replaces the figure shown in the view's ``ipywidgets.Output``.

``render`` must be a function of the control values alone: the view keeps the last
``cache_size`` renders by those values (floats to 12 significant digits), so that going back to a
setting (a toggle, a dropdown, a slider position seen before) shows it again without solving
again, and :meth:`InteractiveView.prerender` fills it ahead. A view whose figure ignores some
control in some settings (the number of fixed steps when the solver is adaptive) says so with
``key``: settings with the same key share one render.

The Output's content is replaced by setting its ``outputs`` state, not by ``display`` inside
``with output:``. The state travels on the widget's comm, so the figure never leaks into the
output of the cell that moved a slider (which nbval would compare), and there is no
``clear_output`` flicker. The figure is sent as the ``plotly_mimetype`` bundle: JSON only, no
embedded plotly.js.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go
import plotly.io as pio
from plotly.utils import PlotlyJSONEncoder

Render = Callable[..., tuple[go.Figure, dict[str, float]]]
COMPUTING = "<i>computing…</i>"  #: the summary line while a render runs
SLIDER_ROOM = 90  #: pixels added below a precomputed figure for its slider
_SELECTIONS = (widgets.Dropdown, widgets.RadioButtons, widgets.Select, widgets.SelectionSlider, widgets.ToggleButtons)


@dataclass(eq=False)
class InteractiveView:
    """Controls, an Output showing the current figure, and a line with the summary numbers.

    Build it with :func:`interactive_view`. Attributes:
        widget: the box to display: controls, the figure's Output, the summary line.
        controls: name -> ipywidgets control; the names are ``render``'s keyword arguments.
        figure: the figure currently shown.
        summary: the numbers ``render`` returned with it.
        cache_size: how many renders it keeps by control values (0: none).
        key: control values -> what decides the figure (default: all of them, in order).
    """

    render: Render
    controls: dict[str, widgets.ValueWidget]
    output: widgets.Output = field(default_factory=widgets.Output)
    summary_line: widgets.HTML = field(default_factory=widgets.HTML)
    figure: go.Figure | None = None
    summary: dict[str, float] = field(default_factory=dict)
    widget: widgets.Box | None = field(default=None, init=False)
    cache_size: int = 32
    key: Callable[[dict[str, Any]], Hashable] | None = None
    _syncing: bool = field(default=False, init=False, repr=False)
    _cache: OrderedDict = field(default_factory=OrderedDict, init=False, repr=False)
    _defaults: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self):
        self._defaults = self.values

    @property
    def values(self) -> dict[str, Any]:
        """The current value of every control, by name."""
        return {name: control.value for name, control in self.controls.items()}

    def update(self, **values) -> go.Figure:
        """Set the given controls (if any), render once with all current values, show the figure."""
        unknown = set(values) - set(self.controls)
        if unknown:
            raise TypeError(f"unknown control(s) {sorted(unknown)}; expected some of {sorted(self.controls)}")
        self._syncing = True
        try:
            for name, value in values.items():
                self.controls[name].value = value
        finally:
            self._syncing = False
        figure, summary, shown = self._rendered(self.values)
        self.figure, self.summary = figure, dict(summary)
        self.output.outputs = (shown,)
        self.summary_line.value = format_summary(self.summary, html=True)
        return figure

    def _key(self, values: dict[str, Any]) -> Hashable:
        """What decides the figure at ``values``, floats to 12 significant digits: a log slider's
        position computed by the browser may differ in the last bit from the same position computed here."""
        values = {name: float(f"{value:.12g}") if isinstance(value, float) else value for name, value in values.items()}
        return tuple(values.items()) if self.key is None else self.key(values)

    def _rendered(self, values: dict[str, Any]) -> tuple[go.Figure, dict, dict]:
        """(figure, summary, output) for ``values``: from the cache, or rendered and kept there."""
        key = self._key(values)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        self.summary_line.value = (
            COMPUTING  # shown while a slow render runs, so old numbers never sit under new controls
        )
        figure, summary = self.render(**values)
        if not isinstance(figure, go.Figure):
            raise TypeError(f"render must return (go.Figure, dict), got {type(figure).__name__} as the figure")
        entry = (figure, dict(summary), figure_output(figure))
        if self.cache_size > 0:
            self._cache[key] = entry
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return entry

    def prerender(self, control: str, values: list | None = None) -> None:
        """Render the view at each of ``values`` of one control (default: every value of a selection or
        an integer slider, see :func:`control_choices`), the other controls at their current values,
        into its cache: those settings then show at once. The figure shown does not change."""
        values = [value for _, value in control_choices(self, control)] if values is None else list(values)
        settings = {self._key({**self.values, control: value}) for value in values}
        if len(settings) > self.cache_size:
            raise ValueError(
                f"prerendering {len(settings)} settings of {control!r} needs cache_size >= "
                f"{len(settings)}, got {self.cache_size}"
            )
        for value in values:
            self._rendered({**self.values, control: value})
        self.summary_line.value = format_summary(self.summary, html=True)  # not the "computing" of those renders

    def reset(self) -> None:
        """Put every control back to the value it was built with and show that figure: a replay
        cell ends with it, so that after Run All the view shows the state its text describes
        (it returns nothing, so that the cell prints nothing more)."""
        self.update(**self._defaults)

    def report(self, digits: int = 4) -> str:
        """The summary as ``name=value`` pairs rounded to ``digits`` significant digits (for replay cells)."""
        return format_summary(self.summary, digits=digits)

    def _on_change(self, change) -> None:
        if not self._syncing:
            self.update()


def interactive_view(
    render: Render,
    controls: dict[str, widgets.ValueWidget],
    cache_size: int = 32,
    key: Callable[[dict[str, Any]], Hashable] | None = None,
) -> InteractiveView:
    """Wire ``controls`` to ``render`` and draw the first figure.

    Sliders get ``continuous_update=False``, so a drag renders once, when it is released. The view
    keeps the last ``cache_size`` renders by control values (0: render every time), or by
    ``key(values)`` when given: a function of the values dict returning what decides the figure
    (hashable), so that settings the figure does not tell apart share one render.
    """
    if not callable(render):
        raise TypeError(f"render must be a callable returning (go.Figure, dict), got {type(render).__name__}")
    if not isinstance(controls, dict) or not controls:
        raise ValueError(f"controls must be a non-empty dict name -> ipywidgets control, got {controls!r}")
    for name, control in controls.items():
        if not isinstance(control, widgets.ValueWidget):
            raise TypeError(f"controls[{name!r}] must be an ipywidgets value widget, got {type(control).__name__}")
    if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
        raise ValueError(f"cache_size must be an integer >= 0, got {cache_size!r}")
    if key is not None and not callable(key):
        raise TypeError(f"key must be None or a callable taking the control values, got {type(key).__name__}")
    view = InteractiveView(render=render, controls=dict(controls), cache_size=cache_size, key=key)
    bar = widgets.HBox(list(view.controls.values()), layout=widgets.Layout(flex_flow="row wrap"))
    view.widget = widgets.VBox([bar, view.output, view.summary_line])
    for control in view.controls.values():
        if hasattr(control, "continuous_update"):
            control.continuous_update = False
        control.observe(view._on_change, names="value")
    view.update()
    return view


def precomputed_figure(view: InteractiveView, control: str, max_values: int = 40) -> go.Figure:
    """The view's figure at every value of one discrete control, behind a plotly slider of its own.

    A kernel-free variant of the view: each value is rendered once, here, and the figure holds
    them all as animation frames, so that its slider steps through them in a page with no Python
    behind it (the lessons' website). A frame holds the traces and layout entries that differ
    between values, the figure the rest once. The other controls keep their
    current values; the figure starts at the control's current value. ``control`` must be a
    selection (dropdown, selection slider, ...), an integer or a log slider with at most ``max_values``
    values, and the view's figure must not be an animation itself.
    """
    choices, widget = control_choices(view, control), view.controls[control]
    if len(choices) > max_values:
        raise ValueError(
            f"control {control!r} has {len(choices)} values, more than max_values={max_values} "
            "frames to precompute; raise max_values if the page may be that large"
        )
    rendered = [(label, view._rendered({**view.values, control: value})[0]) for label, value in choices]
    view.summary_line.value = format_summary(view.summary, html=True)  # not the "computing" of those renders
    traces = {len(figure.data) for _, figure in rendered}
    if len(traces) > 1:
        raise ValueError(
            f"the view draws {sorted(traces)} traces at different values of {control!r}: "
            "a precomputed slider needs the same traces at every value"
        )
    if any(figure.frames for _, figure in rendered):
        raise ValueError("the view's figure is an animation already; its frames cannot be nested in another slider")
    current = next(k for k, (_, value) in enumerate(choices) if value == widget.value)
    # A frame holds only what changes between values: the traces and layout entries that differ.
    traces = [[_as_json(trace.to_plotly_json()) for trace in figure.data] for _, figure in rendered]
    changing = [i for i in range(len(traces[0])) if len({shown[i] for shown in traces}) > 1]
    layouts = [figure.layout.to_plotly_json() for _, figure in rendered]
    keys = sorted({key for layout in layouts for key in layout} - {"template"})
    moving = [key for key in keys if len({_as_json(layout.get(key)) for layout in layouts}) > 1]
    result = go.Figure(rendered[current][1])
    result.frames = [
        go.Frame(
            name=label,
            traces=changing,
            data=[figure.data[i] for i in changing],
            layout={key: layout[key] for key in moving if key in layout},
        )
        for (label, figure), layout in zip(rendered, layouts)
    ]
    step = {"mode": "immediate", "frame": {"duration": 0, "redraw": True}, "transition": {"duration": 0}}
    # The slider goes into room added below the figure, clear of what the figure put under its plots (a legend).
    height, margin = result.layout.height or 450, result.layout.margin  # plotly's defaults: 450, t 100, b 80
    bottom = 80 if margin.b is None else margin.b
    plots = height - (100 if margin.t is None else margin.t) - bottom
    result.update_layout(
        height=height + SLIDER_ROOM,
        margin_b=bottom + SLIDER_ROOM,
        sliders=[
            {
                "active": current,
                "currentvalue": {"prefix": f"{widget.description or control}: "},
                "y": -bottom / plots,
                "yanchor": "top",
                "pad": {"t": 10},
                "steps": [{"label": label, "method": "animate", "args": [[label], step]} for label, _ in choices],
            }
        ],
    )
    return result


def prerender_all(view: InteractiveView, controls: tuple[str, ...]) -> None:
    """:meth:`InteractiveView.prerender` every value of each of ``controls``, the view's cache grown
    by their number, so that the renders it keeps for settings seen later are as many as before."""
    view.cache_size += sum(len(control_choices(view, control)) for control in controls)
    for control in controls:
        view.prerender(control)


def control_choices(view: InteractiveView, control: str) -> list[tuple[str, Any]]:
    """(label, value) for every value of one of the view's controls: a selection's options, an
    integer or a log slider's positions; other controls have too many values to go through."""
    if control not in view.controls:
        raise ValueError(f"control must be one of the view's controls {sorted(view.controls)}, got {control!r}")
    widget = view.controls[control]
    if isinstance(widget, _SELECTIONS):
        return [option if isinstance(option, tuple) else (str(option), option) for option in widget.options]
    if isinstance(widget, widgets.IntSlider):
        return [(str(v), v) for v in range(widget.min, widget.max + 1, widget.step)]
    if isinstance(widget, widgets.FloatLogSlider):
        count = int(round((widget.max - widget.min) / widget.step)) + 1
        return [
            (f"{value:g}", value) for value in (widget.base ** (widget.min + k * widget.step) for k in range(count))
        ]
    raise ValueError(
        f"control {control!r} must be a selection, an IntSlider or a FloatLogSlider to go through its values, "
        f"got a {type(widget).__name__}"
    )


def _as_json(value) -> str:
    """``value`` (plotly JSON, numpy arrays in it) as one canonical string, to compare two of them."""
    return json.dumps(value, cls=PlotlyJSONEncoder, sort_keys=True)


def figure_output(figure: go.Figure) -> dict:
    """``figure`` as one display_data output with the plotly mimetype bundle (what an Output holds)."""
    bundle = pio.renderers["plotly_mimetype"].to_mimebundle(figure.to_dict())
    return {"output_type": "display_data", "data": bundle, "metadata": {}}


def format_summary(summary: dict[str, float], digits: int = 4, html: bool = False) -> str:
    """``name=value`` pairs, numbers rounded to ``digits`` significant digits; bold names for HTML."""
    parts = []
    for name, value in summary.items():
        text = f"{value:.{digits}g}" if isinstance(value, float) else str(value)
        parts.append(f"<b>{name}</b> = {text}" if html else f"{name}={text}")
    return " &nbsp; ".join(parts) if html else ", ".join(parts)
