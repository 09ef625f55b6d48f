"""Notebook 03's exercises: the second-order AMD step with exact damping, and how much velocity a step keeps."""

from __future__ import annotations

import torch

from ..flows import DAMPING_EPS, GradientFlow
from .core import Case, CodeExercise, Mismatch, PredictExercise, register


def second_order_step(t, dt, z, v, grad, alpha):
    """One step of z'' + (3 / t) z' + alpha * grad_z l = 0 as the library takes it, per sample.

    t, dt: (B,); z, v: position and velocity (B, d); grad: grad_z l at z (B, d); alpha: a float.
    First scale v by the exact solution of dv/dt = -3 v / t over the step,
    ((t + eps) / (t + dt + eps))**3 with eps = 1e-5; then subtract dt * alpha * grad from v; then
    move z with the new v (semi-implicit Euler). Return (new z, new v).
    """
    eps = 1e-5
    decay = ((t + eps) / (t + dt + eps)) ** 3
    v = v * decay.unsqueeze(1) - (dt * alpha).unsqueeze(1) * grad
    return z + dt.unsqueeze(1) * v, v


def _package_step(t, dt, z, v, grad, alpha):
    flow = GradientFlow(torch.nn.Identity(), order=2, alpha=alpha)
    state = flow.euler_step(t, dt, torch.cat([z, v], 1), grad)
    d = z.shape[1]
    return state[:, :d], state[:, d:]


def _state(t, dt, v_scale, alpha):
    def make():
        g = torch.Generator().manual_seed(len(t))
        z, v, grad = (torch.randn(len(t), 2, generator=g, dtype=torch.float64) for _ in range(3))
        return dict(
            t=torch.tensor(t, dtype=torch.float64),
            dt=torch.tensor(dt, dtype=torch.float64),
            z=z,
            v=v_scale * v,
            grad=grad,
            alpha=alpha,
        )

    return make


def _step_fault(inputs: dict, mismatch: Mismatch) -> str:
    s = mismatch.sample
    t, dt = float(inputs["t"][s]), float(inputs["dt"][s])
    got = mismatch.got.to(torch.float64)[s]
    if not bool(torch.isfinite(got).all()):
        return (
            f"your step is not finite for sample {s} at t = {t:g}: integrate the damping exactly, "
            f"v * ((t + eps) / (t + dt + eps))**3, instead of an Euler step of -3 v / t"
        )
    if mismatch.part == 0 and torch.allclose(got, inputs["z"][s]):
        return (
            f"your position did not move for sample {s}, which starts at rest: move z with the new "
            f"velocity (semi-implicit Euler), not the old one"
        )
    expected, received = mismatch.values()
    what = "position" if mismatch.part == 0 else "velocity"
    factor = ((t + DAMPING_EPS) / (t + dt + DAMPING_EPS)) ** 3
    return (
        f"your new {what} for sample {s} (t = {t:g}, dt = {dt:g}) should be {expected}, yours is {received}; "
        f"the damping keeps the factor {factor:.4g} of v, then the force, then z moves with the new v"
    )


register(
    CodeExercise(
        name="second_order_step",
        notebook="03_first_vs_second_order",
        solution=second_order_step,
        expected=_package_step,
        cases=(
            Case("a first step from rest at t = 0", _state([0.0, 0.0], [1.0, 0.5], 0.0, 1.0), _step_fault),
            Case(
                "moving samples at t = 100 and 3", _state([100.0, 3.0, 100.0], [10.0, 1.0, 1.0], 1.0, 1.0), _step_fault
            ),
            Case("a moving sample with alpha = 0.5", _state([20.0], [2.0], 1.0, 0.5), _step_fault),
        ),
    )
)

register(
    PredictExercise(
        name="velocity_kept",
        notebook="03_first_vs_second_order",
        question="At t = 100 the second-order flow takes a step of dt = 10. Which fraction of its velocity does the "
        "3/t damping leave (a number between 0 and 1)?",
        answer=((100 + DAMPING_EPS) / (110 + DAMPING_EPS)) ** 3,
        tolerance=0.03,
        explanation="The damping alone solves dv/dt = -3 v / t, so v(t + dt) = v(t) (t / (t + dt))^3 = "
        "(100 / 110)^3: about 75% survives. Late in a solve the friction is weak and momentum builds up; "
        "from t = 0.1 a step of dt = 1 would keep less than 0.1%.",
        feedback={
            "low": "The friction is 3/t: how strong is it at t = 100?",
            "high": "Over a step from 100 to 110 the friction still acts: solve dv/dt = -3 v / t over it.",
        },
    )
)
