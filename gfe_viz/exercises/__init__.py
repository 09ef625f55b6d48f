"""Exercises that check themselves, for the lesson notebooks.

In a notebook: complete the stub of a code exercise (its cell starts ``# EXERCISE: <name>``), then
``check("<name>", your_function)``; answer a predict exercise in ``ask("<name>")`` or with
``check("<name>", "b")``; ``reveal("<name>")`` shows the reference solution, collapsed. Each
check compares with the package's own implementation on several inputs and says in one sentence
what is wrong; an unsolved stub gets "not done yet".
"""

from . import adjoint, amd_rules, gradient_flow, second_order, truncation  # noqa: F401  (they register the exercises)
from .core import EXERCISES, Case, CodeExercise, PredictExercise, Verdict, check, get_exercise, solution
from .display import ask, reveal

__all__ = [
    "EXERCISES",
    "Case",
    "CodeExercise",
    "PredictExercise",
    "Verdict",
    "ask",
    "check",
    "get_exercise",
    "reveal",
    "solution",
]
