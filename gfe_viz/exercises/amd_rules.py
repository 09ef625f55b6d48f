"""Notebook 02's exercises: AMD's acceptance test, its step-size update, its convergence test, and
what batch acceptance costs. The checks compare with the solver's own rules in :mod:`gfe_viz.amd`."""

from __future__ import annotations

import numpy as np
import torch

from ..amd import AMD_MNIST, AMDOptions, ConvergenceWindow, StepController
from .core import Case, CodeExercise, Mismatch, PredictExercise, register


# --- the sufficient-decrease test -------------------------------------------------------------------
def accepts(loss0, loss1, grad0, grad1, dt, options):
    """AMD's acceptance test for one attempt of a batch, with alpha = 1 (so the force f is -grad).

    loss0, loss1: l at z0 and at the candidate z1, shape (B,); grad0, grad1: grad_z l there, (B, d);
    dt: the step of each sample, (B,); options: an AMDOptions (use options.sigma and options.dt_max).
    Return a boolean tensor (B,): True where the sample's step is accepted.
    """
    return loss0 - loss1 >= options.sigma * dt * options.dt_max * grad1.square().sum(1)


def _package_accepts(loss0, loss1, grad0, grad1, dt, options):
    return StepController.from_options(options).accepts(loss0, loss1, dt, grad1.square().sum(1))


def _decrease_inputs(loss0, loss1, grad0_sq, grad1_sq, dt, options):
    def make():
        def gradient(squared_norms):  # a (B, 2) gradient with the given squared norms
            return torch.stack(
                [
                    torch.tensor(squared_norms, dtype=torch.float64).sqrt(),
                    torch.zeros(len(squared_norms), dtype=torch.float64),
                ],
                1,
            )

        return dict(
            loss0=torch.tensor(loss0, dtype=torch.float64),
            loss1=torch.tensor(loss1, dtype=torch.float64),
            grad0=gradient(grad0_sq),
            grad1=gradient(grad1_sq),
            dt=torch.tensor(dt, dtype=torch.float64),
            options=options,
        )

    return make


def _decrease_fault(inputs: dict, mismatch: Mismatch) -> str:
    s, o = mismatch.sample, inputs["options"]
    drop = float(inputs["loss0"][s] - inputs["loss1"][s])
    scale = o.sigma * float(inputs["dt"][s]) * o.dt_max
    rhs, rhs_at_z0 = scale * float(inputs["grad1"][s].square().sum()), scale * float(inputs["grad0"][s].square().sum())
    if bool(mismatch.got[s]):  # accepted, should be rejected
        if drop < 0:
            return f"your step is accepted for sample {s} although its loss rose"
        return (
            f"your test accepts sample {s}, whose loss fell by {drop:.3g}, less than "
            f"sigma * dt * dt_max * ||grad l(z1)||^2 = {rhs:.3g}"
        )
    if drop == rhs:
        hint = " (the test is >=: a decrease equal to the right-hand side passes)"
    elif drop < rhs_at_z0:
        hint = " (the right-hand side uses the gradient at the candidate z1, not at z0)"
    else:
        hint = ""
    return (
        f"your test rejects sample {s}, whose loss fell by {drop:.3g}, at least "
        f"sigma * dt * dt_max * ||grad l(z1)||^2 = {rhs:.3g}{hint}"
    )


_STRICT = AMDOptions(sigma=1e-3, dt_max=10.0)
_ACCEPTS_CASES = (
    Case(
        "losses that rose, fell and rose by 1e-9 (zero gradients)",
        _decrease_inputs([0.5, 0.5, 0.5], [0.6, 0.4, 0.5 + 1e-9], [0, 0, 0], [0, 0, 0], [1, 1, 1], _STRICT),
        _decrease_fault,
    ),
    Case(
        "a steep start and a flat candidate",
        _decrease_inputs([0.5, 0.5], [0.499, 0.4995], [100, 0.01], [0.01, 100], [1, 1], _STRICT),
        _decrease_fault,
    ),
    Case(
        "decreases below sigma * dt * dt_max * ||g1||^2 but above it without dt_max or dt",
        _decrease_inputs([0.5, 0.5, 0.5], [0.495, 0.495, 0.485], [1, 1, 1], [1, 0.1, 1], [1, 1, 2], _STRICT),
        _decrease_fault,
    ),
    Case(
        "a loss that stayed, with sigma = 0",
        _decrease_inputs([0.5, 0.25], [0.5, 0.25], [1, 1], [1, 1], [1, 0.5], AMDOptions(sigma=0.0)),
        _decrease_fault,
    ),
)
register(
    CodeExercise(
        name="accepts", notebook="02_amd_solver_lab", solution=accepts, expected=_package_accepts, cases=_ACCEPTS_CASES
    )
)


# --- the step-size update ---------------------------------------------------------------------------
def next_dt(dt, accepted, options):
    """AMD's step size after one attempt, per sample: dt (B,), accepted (B,) booleans, options an AMDOptions.

    After an acceptance dt grows by options.grow, but is at least options.dt0 and at most
    options.dt_max; after a rejection it shrinks by options.shrink. The next attempt is forced (taken
    whatever its loss) when a rejection shrank dt below options.dt_floor.
    Return (new dt (B,), forced (B,) booleans).
    """
    shrunk = dt * options.shrink
    grown = torch.clamp(dt * options.grow, min=options.dt0, max=options.dt_max)
    return torch.where(accepted, grown, shrunk), ~accepted & (shrunk < options.dt_floor)


def _package_next_dt(dt, accepted, options):
    return StepController.from_options(options).next(dt, accepted)


def _dt_inputs(dt, accepted):
    return lambda: dict(dt=torch.tensor(dt, dtype=torch.float64), accepted=torch.tensor(accepted), options=AMD_MNIST)


def _dt_fault(rule: str):
    def fault(inputs: dict, mismatch: Mismatch) -> str:
        s = mismatch.sample
        dt, accepted = float(inputs["dt"][s]), bool(inputs["accepted"][s])
        expected, got = mismatch.values()
        what = "forced" if mismatch.part == 1 else "the new dt"
        return (
            f"{rule} (sample {s}: dt {dt:.4g} {'accepted' if accepted else 'rejected'}, "
            f"{what} should be {expected}, yours is {got})"
        )

    return fault


_FLOOR = AMD_MNIST.dt_floor
register(
    CodeExercise(
        name="next_dt",
        notebook="02_amd_solver_lab",
        solution=next_dt,
        expected=_package_next_dt,
        cases=(
            Case(
                "accepted steps",
                _dt_inputs([1.0, 2.0, 5.0], [True, True, True]),
                _dt_fault("after an acceptance dt grows to grow * dt"),
            ),
            Case(
                "rejected steps",
                _dt_inputs([1.0, 4.0, 10.0], [False, False, False]),
                _dt_fault("after a rejection dt shrinks to shrink * dt"),
            ),
            Case(
                "accepted steps after shrinking",
                _dt_inputs([0.25, 0.5, 0.9], [True, True, True]),
                _dt_fault("after an acceptance dt is at least dt0"),
            ),
            Case(
                "accepted steps near dt_max",
                _dt_inputs([9.5, 10.0], [True, True]),
                _dt_fault("after an acceptance dt is at most dt_max"),
            ),
            Case(
                "rejected steps near the floor",
                _dt_inputs([4 * _FLOOR, 1.5 * _FLOOR, 1.9 * _FLOOR], [False] * 3),
                _dt_fault("the next attempt is forced once a rejection shrinks dt below the floor"),
            ),
            Case(
                "accepted steps near the floor",
                _dt_inputs([_FLOOR, 0.5 * _FLOOR], [True, True]),
                _dt_fault("an accepted step never forces the next one"),
            ),
            Case(
                "a mixed batch",
                _dt_inputs([1.0, 3.0, 0.5, 10.0], [True, False, True, False]),
                _dt_fault("each sample follows its own acceptance"),
            ),
        ),
    )
)


# --- the convergence test ---------------------------------------------------------------------------
def converged(losses, conv_tol):
    """AMD's convergence test: ``losses`` are the losses recorded so far (a list of floats, oldest first).

    Converged when at least 5 are recorded and the mean of numpy.gradient over the last 5 has an
    absolute value below conv_tol. Return True or False.
    """
    if len(losses) < 5:
        return False
    return bool(abs(np.gradient(np.asarray(losses[-5:])).mean()) < conv_tol)


def _package_converged(losses, conv_tol):
    window = ConvergenceWindow.empty(1, torch.zeros(1, dtype=torch.float64), AMDOptions(conv_tol=conv_tol), tau=1.0)
    at_tau, taken = torch.ones(1, dtype=torch.float64), torch.ones(1, dtype=torch.bool)
    for loss in losses:
        window = window.push(at_tau, taken, torch.tensor([loss], dtype=torch.float64))
    return window.converged()[0]


def _history(losses, conv_tol):
    return lambda: dict(losses=list(losses), conv_tol=conv_tol)


register(
    CodeExercise(
        name="converged",
        notebook="02_amd_solver_lab",
        solution=converged,
        expected=_package_converged,
        cases=(
            Case(
                "4 equal losses",
                _history([0.3] * 4, 1e-5),
                "with fewer than 5 recorded losses the test cannot pass: yours says {got}",
            ),
            Case(
                "5 equal losses",
                _history([0.3] * 5, 1e-5),
                "5 equal recorded losses fill the window and have slope 0: yours says {got}",
            ),
            Case(
                "a steep start, then 5 flat losses",
                _history([0.9, 0.6, 0.3, 0.3, 0.3, 0.3, 0.3], 1e-5),
                "the test looks only at the last 5 recorded losses: yours says {got}",
            ),
            Case(
                "a falling loss",
                _history([0.5, 0.4, 0.3, 0.2, 0.1], 1e-5),
                "a falling loss has a negative slope; compare its absolute value with conv_tol: yours says {got}",
            ),
            Case(
                "a last loss that jumps",
                _history([0.2, 0.2, 0.2, 0.2, 0.20004], 1.1e-5),
                "the slope is the mean of numpy.gradient over the window (one-sided differences at its ends), "
                "not the mean of numpy.diff: yours says {got}",
            ),
        ),
    )
)


# --- predict: batch acceptance --------------------------------------------------------------------
register(
    PredictExercise(
        name="batch_acceptance",
        notebook="02_amd_solver_lab",
        question="Switch from per-sample to batch acceptance: one dt for the whole batch, and a step is accepted only "
        "when every sample passes the test. What happens to the mean number of decoder evaluations per sample?",
        choices={
            "a": "about the same: the samples converge at about the same time anyway",
            "b": "it falls: the batch moves together, so fewer evaluations are wasted",
            "c": "it rises to about that of the slowest sample, several times the per-sample mean",
        },
        answer="c",
        explanation="In batch mode one trapped sample's rejections shrink dt for everyone and the batch stops only "
        "when the last sample converges, so every sample pays the slowest one's evaluations: over 3x the "
        "per-sample mean here (the replay below checks it).",
        feedback={
            "a": "Look at the bottom-right panel: do the samples really cost the same?",
            "b": "What happens to the other samples' dt when one sample's step is rejected?",
        },
    )
)
