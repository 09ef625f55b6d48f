"""Exercises that check themselves: verdicts, code and predict exercises, and the registry.

A :class:`CodeExercise` holds a reference solution (a plain function the student may reveal), the
package's own implementation it is checked against, and :class:`Case` inputs, each with the
one-sentence fault reported when the student's output differs there (the cases are ordered so
that each one tests one more rule). A :class:`PredictExercise` holds a multiple-choice or numeric
question, its answer and the explanation. A stub (it raises ``NotImplementedError``) or an
unanswered ``...`` gets the verdict "not done yet", never an error, so the shipped notebooks run.
"""

from __future__ import annotations

import ast
import html
import inspect
import math
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..models import _mlp

#: relative and absolute tolerance of a code check (the checks run in float64)
RTOL, ATOL = 1e-6, 1e-9


@dataclass(frozen=True)
class Verdict:
    """The result of a check: passed or not, one sentence why, and whether the exercise was attempted."""

    passed: bool
    message: str
    done: bool = True

    @property
    def label(self) -> str:
        return "passed" if self.passed else "not yet right" if self.done else "not done yet"

    def __str__(self) -> str:
        return f"{self.label}: {self.message}"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour = "#2e7d32" if self.passed else "#c62828" if self.done else "#8d6e00"
        return (
            f'<div style="border-left: 4px solid {colour}; padding: 2px 8px"><b style="color: {colour}">'
            f"{self.label}</b>: {html.escape(self.message)}</div>"
        )


def not_done(message: str) -> Verdict:
    return Verdict(False, message, done=False)


@dataclass(frozen=True)
class Mismatch:
    """Where a student's output first differs from the expected one: output ``part``, row ``sample``."""

    part: int
    sample: int | None
    expected: torch.Tensor
    got: torch.Tensor

    def values(self) -> tuple[str, str]:
        """The expected and the received value at the mismatching row, rounded, as text."""
        return _format(self.expected, self.sample), _format(self.got, self.sample)


#: a fault: a sentence with ``{sample}``, ``{expected}`` and ``{got}`` fields, or a function of
#: (inputs, mismatch) that writes the sentence
Fault = str | Callable[[dict, Mismatch], str]


@dataclass(frozen=True)
class Case:
    """One check input: ``make()`` builds fresh keyword arguments (a student's function may change its
    inputs in place), and ``fault`` says what is wrong when the output differs from the expected one."""

    name: str
    make: Callable[[], dict]
    fault: Fault

    def describe(self, inputs: dict, mismatch: Mismatch) -> str:
        if callable(self.fault):
            return self.fault(inputs, mismatch)
        expected, got = mismatch.values()
        return self.fault.format(sample=mismatch.sample, expected=expected, got=got)


@dataclass(frozen=True)
class CodeExercise:
    """The student completes ``solution``'s function; it must agree with ``expected`` on every case."""

    name: str
    notebook: str
    solution: Callable
    expected: Callable
    cases: tuple[Case, ...]
    kind: str = field(default="code", init=False)

    @property
    def function_name(self) -> str:
        return self.solution.__name__

    @property
    def solution_source(self) -> str:
        return textwrap.dedent(inspect.getsource(self.solution))

    @property
    def stub(self) -> str:
        """The solution's signature and docstring, with a body that raises ``NotImplementedError``."""
        source = self.solution_source
        function = ast.parse(source).body[0]
        docstring_end = function.body[0].end_lineno
        head = "\n".join(source.splitlines()[:docstring_end])
        return f"{head}\n    # your code here\n    raise NotImplementedError\n"

    def check(self, function) -> Verdict:
        """Run ``function`` on every case and compare it with the package's implementation."""
        if not callable(function):
            raise TypeError(
                f"the answer to {self.name!r} must be your function {self.function_name}, got {type(function).__name__}"
            )
        for case in self.cases:
            try:
                got = function(**case.make())
            except NotImplementedError:
                return not_done(
                    f"{self.function_name} still raises NotImplementedError: complete it and run this cell again"
                )
            except Exception as error:  # the student's code: report it in one sentence
                return Verdict(
                    False, f"on {case.name} your {self.function_name} raised {type(error).__name__}: {error}"
                )
            if got is Ellipsis:
                return not_done(f"{self.function_name} still returns ...: complete it and run this cell again")
            inputs = case.make()
            problem = compare_outputs(self.expected(**inputs), got)
            if isinstance(problem, str):
                return Verdict(False, f"on {case.name} your {self.function_name} {problem}")
            if problem is not None:
                return Verdict(False, case.describe(inputs, problem))
        return Verdict(
            True,
            f"{self.function_name} agrees with the package on all {len(self.cases)} cases: "
            + ", ".join(case.name for case in self.cases),
        )


@dataclass(frozen=True)
class PredictExercise:
    """A prediction before an experiment: one of ``choices`` (letter -> text), or a number within
    ``tolerance`` of ``answer`` when there are no choices. ``feedback`` answers each wrong choice
    (for a number: ``"low"`` and ``"high"``) without giving the answer away."""

    name: str
    notebook: str
    question: str
    answer: str | float
    explanation: str
    choices: dict[str, str] | None = None
    tolerance: float = 0.0
    feedback: dict[str, str] = field(default_factory=dict)
    kind: str = field(default="predict", init=False)

    @property
    def solution_source(self) -> str:
        answer = f"{self.answer}) {self.choices[self.answer]}" if self.choices else f"{self.answer:.3g}"
        return f"answer: {answer}\n\n{self.explanation}"

    def check(self, answer) -> Verdict:
        if answer is Ellipsis or answer is None:
            what = f"one of {', '.join(self.choices)}" if self.choices else "a number"
            return not_done(f"answer with {what}, in the widget above or as my_prediction")
        if self.choices:
            if not isinstance(answer, str) or answer.strip().lower() not in self.choices:
                raise ValueError(f"the answer to {self.name!r} must be one of {list(self.choices)}, got {answer!r}")
            answer = answer.strip().lower()
            if answer == self.answer:
                return Verdict(True, self.explanation)
            return Verdict(False, f"{self.feedback.get(answer, 'not this one.')} Try another answer.")
        if isinstance(answer, bool) or not isinstance(answer, (int, float)) or not math.isfinite(answer):
            raise ValueError(f"the answer to {self.name!r} must be a finite number, got {answer!r}")
        if abs(answer - self.answer) <= self.tolerance:
            return Verdict(True, f"{answer:g} is within {self.tolerance:g} of {self.answer:.3g}. {self.explanation}")
        side = "low" if answer < self.answer else "high"
        return Verdict(False, f"{answer:g} is too {side}. {self.feedback.get(side, '')}".rstrip())


Exercise = CodeExercise | PredictExercise
EXERCISES: dict[str, Exercise] = {}


def register(exercise: Exercise) -> Exercise:
    """Add ``exercise`` to the registry; names are unique."""
    if exercise.name in EXERCISES:
        raise ValueError(f"an exercise named {exercise.name!r} is already registered")
    EXERCISES[exercise.name] = exercise
    return exercise


def get_exercise(name: str) -> Exercise:
    if name not in EXERCISES:
        raise ValueError(f"name must be a registered exercise, one of {sorted(EXERCISES)}, got {name!r}")
    return EXERCISES[name]


def check(name: str, answer) -> Verdict:
    """Check a student's function (code exercise) or prediction (predict exercise) ``answer``."""
    return get_exercise(name).check(answer)


def solution(name: str) -> Callable:
    """The reference solution of code exercise ``name``, as a function to use in place of your own."""
    exercise = get_exercise(name)
    if not isinstance(exercise, CodeExercise):
        raise ValueError(f"name must name a code exercise, got the {exercise.kind} exercise {name!r}")
    return exercise.solution


def small_problem(seed: int, batch: int) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """Check inputs: a small float64 MLP decoder (2 -> 8, ELU), targets in [0, 1) (batch, 8) and latents
    (batch, 2), drawn from ``seed`` without touching the notebook's random numbers."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        decoder = _mlp([2, 16, 8]).double()
        return decoder, torch.rand(batch, 8, dtype=torch.float64), torch.randn(batch, 2, dtype=torch.float64)


def compare_outputs(expected, got) -> Mismatch | str | None:
    """None when ``got`` equals ``expected`` (to RTOL/ATOL, booleans exactly), a :class:`Mismatch` at
    the first differing row, or a phrase saying what is wrong with the output's form."""
    expected_parts = list(expected) if isinstance(expected, (tuple, list)) else [expected]
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return f"returned {_describe(got)}, expected {len(expected)} values"
        got_parts = list(got)
    else:
        got_parts = [got]
    for part, (want, have) in enumerate(zip(expected_parts, got_parts)):
        want = torch.as_tensor(want).detach()
        try:
            have = torch.as_tensor(have).detach()
        except (TypeError, ValueError, RuntimeError):
            return f"returned {_describe(have)}, expected a tensor of shape {tuple(want.shape)}"
        if have.shape != want.shape:
            return f"returned shape {tuple(have.shape)}, expected {tuple(want.shape)}"
        if want.dtype == torch.bool:
            if have.dtype != torch.bool:
                return f"returned dtype {have.dtype}, expected booleans"
            differs = have != want
        else:
            differs = ~torch.isclose(have.to(torch.float64), want.to(torch.float64), rtol=RTOL, atol=ATOL)
        if bool(differs.any()):
            first = differs.nonzero()[0] if differs.dim() else None
            sample = None if first is None else int(first[0])
            return Mismatch(part, sample, want, have)
    return None


def _describe(value) -> str:
    if isinstance(value, (tuple, list)):
        return f"{len(value)} values"
    return "None" if value is None else f"a {type(value).__name__}"


def _format(values: torch.Tensor, sample: int | None) -> str:
    row = values if sample is None else values[sample]
    if row.dtype == torch.bool:
        return str(row.tolist())
    if row.dim() == 0:
        return f"{row.item():.4g}"
    return "[" + ", ".join(f"{v:.4g}" for v in row.flatten().tolist()) + "]"
