"""Notebook 07's exercises: the truncation map of a ReLU layer on input space, one Euler step of the
effective threshold equation, and what a threshold with nothing to truncate does."""

from __future__ import annotations

import numpy as np
import torch

from ..truncation import euler_threshold_path
from ..truncation import truncation_map as package_truncation_map
from .core import Case, CodeExercise, PredictExercise, register


def truncation_map(x, weight, bias):
    """tau_{W,b}(x) = W^-1 (relu(W x + b) - b) for points x (N, Q), an invertible weight W (Q, Q) and bias b (Q,).

    Points in the cone W x + b >= 0 stay where they are; the others are projected onto its faces.
    Return the mapped points (N, Q).
    """
    hidden = torch.relu(x @ weight.T + bias)
    return torch.linalg.solve(weight, (hidden - bias).T).T


def _layer(weight, bias, points):
    return lambda: dict(
        x=torch.tensor(points, dtype=torch.float64),
        weight=torch.tensor(weight, dtype=torch.float64),
        bias=torch.tensor(bias, dtype=torch.float64),
    )


_SHEAR = [[2.0, 1.0], [-0.5, 1.5]]
register(
    CodeExercise(
        name="truncation_map",
        notebook="07_dynamical_truncation",
        solution=truncation_map,
        expected=package_truncation_map,
        cases=(
            Case(
                "points inside the cone",
                _layer(_SHEAR, [0.5, 0.5], [[1.0, 0.5], [0.2, 0.3], [0.0, 0.0]]),
                "point {sample} lies in the cone W x + b >= 0, where the map is the identity; yours moves it to "
                "{got}: map relu(W x + b) back to input space, W^-1 (relu(W x + b) - b)",
            ),
            Case(
                "a diagonal layer: clamps",
                _layer([[2.0, 0.0], [0.0, -1.0]], [1.0, 0.5], [[-2.0, 0.0], [0.0, 2.0]]),
                "with a diagonal W the map clamps each coordinate at -b / W; point {sample} should go to "
                "{expected}, yours goes to {got}",
            ),
            Case(
                "a general layer, points outside the cone",
                _layer(_SHEAR, [0.5, -1.0], [[-2.0, -1.0], [1.0, -2.0], [-1.0, 2.0]]),
                "point {sample} should go to {expected}, yours goes to {got}: solve with W itself (not its "
                "transpose) after subtracting b",
            ),
        ),
    )
)


def threshold_step(points, beta, target, step):
    """One Euler step of the effective threshold equation d beta/dt = -(n / N)(beta - target) of a max-type threshold.

    points: the N data values (a 1-D numpy array); n counts the truncated points, those strictly below
    beta. Return the new beta (a float).
    """
    n = int(np.sum(points < beta))
    return float(beta - step * n / len(points) * (beta - target))


def _package_threshold_step(points, beta, target, step):
    return float(euler_threshold_path(points, target, beta, step=step, t_end=step).beta[1])


def _threshold(points, beta, target, step):
    return lambda: dict(points=np.array(points, dtype=float), beta=beta, target=target, step=step)


_POINTS = [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
register(
    CodeExercise(
        name="threshold_step",
        notebook="07_dynamical_truncation",
        solution=threshold_step,
        expected=_package_threshold_step,
        cases=(
            Case(
                "3 of 8 points truncated",
                _threshold(_POINTS, 0.25, 1.0, 0.1),
                "with 3 of 8 points below beta = 0.25 the new beta is {expected}, yours is {got}: "
                "beta - step * (n / N) * (beta - target)",
            ),
            Case(
                "a point exactly at beta",
                _threshold(_POINTS, 0.5, 1.0, 0.1),
                "a point exactly at beta is not truncated (truncated means x < beta): the new beta is {expected}, "
                "yours is {got}",
            ),
            Case(
                "no point truncated",
                _threshold(_POINTS, -2.0, 1.0, 0.1),
                "with no point below beta, n = 0 and beta does not move: yours moves it to {got}",
            ),
            Case(
                "every point truncated, target below beta",
                _threshold(_POINTS, 3.0, 1.0, 0.5),
                "with all 8 points truncated beta moves towards the target, to {expected}; yours goes to {got}",
            ),
        ),
    )
)

register(
    PredictExercise(
        name="no_seed_point",
        notebook="07_dynamical_truncation",
        question="In the threshold equation d beta/dt = -(n/N)(beta - target), start beta below every data point, so "
        "that no point is truncated (n = 0), with the target inside the cluster. What does beta do?",
        choices={
            "a": "it moves to the target, slowly, at rate 1/N",
            "b": "it jumps to the first data point and starts truncating from there",
            "c": "it never moves: with n = 0 its velocity is zero, for good",
        },
        answer="c",
        explanation="The rate is n/N: a threshold that truncates nothing feels no gradient (no point depends on it), "
        "so beta stays put and nothing is ever truncated. Truncation needs seed points; the replay below "
        "starts with n_seed = 0 and reports no event.",
        feedback={
            "a": "Which points does the cost's gradient in beta come from?",
            "b": "Gradient flow is continuous: what is d beta/dt at the start?",
        },
    )
)
