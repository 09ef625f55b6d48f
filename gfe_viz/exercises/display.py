"""Exercise widgets: a collapsed reveal of the reference solution, and a predict question with a check button."""

from __future__ import annotations

import html
import math

import ipywidgets as widgets

from .core import PredictExercise, get_exercise


def reveal(name: str) -> widgets.Accordion:
    """The reference solution of exercise ``name`` (its source, or a prediction's answer and explanation),
    collapsed until opened; nothing is executed."""
    exercise = get_exercise(name)
    hint = (
        ""
        if isinstance(exercise, PredictExercise)
        else f"<p>To use it in place of yours: <code>{exercise.function_name} = solution({name!r})</code> "
        f"(<code>from gfe_viz.exercises import solution</code>).</p>"
    )
    body = widgets.HTML(f'<pre style="white-space: pre-wrap">{html.escape(exercise.solution_source)}</pre>{hint}')
    accordion = widgets.Accordion(children=[body], selected_index=None)
    accordion.set_title(0, f"solution of {name} (click to open)")
    return accordion


def ask(name: str) -> widgets.VBox:
    """Predict exercise ``name`` as a widget: the question, the choices (or a number box), a check button
    and the verdict, which :func:`gfe_viz.exercises.check` gives in code as well."""
    exercise = get_exercise(name)
    if not isinstance(exercise, PredictExercise):
        raise ValueError(f"name must name a predict exercise, got the {exercise.kind} exercise {name!r}")
    if exercise.choices:
        answer = widgets.RadioButtons(
            options=[(f"{key}) {text}", key) for key, text in exercise.choices.items()],
            value=None,
            layout=widgets.Layout(width="auto"),
        )
    else:
        answer = widgets.FloatText(value=math.nan, description="answer")
    button = widgets.Button(description="check")
    verdict = widgets.HTML()

    def on_click(_):
        value = answer.value
        unanswered = value is None or (isinstance(value, float) and math.isnan(value))
        verdict.value = exercise.check(None if unanswered else value)._repr_html_()

    button.on_click(on_click)
    question = widgets.HTML(f"<b>Predict:</b> {html.escape(exercise.question)}")
    return widgets.VBox([question, answer, button, verdict])
