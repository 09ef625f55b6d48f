"""Notebook 01's exercises: one explicit Euler step of the gradient flow, and where a flow from another start ends."""

from __future__ import annotations

import math

import torch

from ..flows import GradientFlow
from ..losses import bce_logits
from .core import Case, CodeExercise, Mismatch, PredictExercise, register, small_problem


def euler_step(decoder, x, z, dt, alpha):
    """One explicit Euler step of dz/dt = -alpha * grad_z l(x, D(z)) for a batch.

    z (B, d), x (B, P); dt and alpha are floats.

    l is the per-sample loss ``bce_logits(decoder(z), x)``, shape (B,): every sample moves along the
    gradient of its own loss. Return the new latents (B, d), detached.
    """
    z = z.detach().requires_grad_(True)
    loss = bce_logits(decoder(z), x)
    (grad,) = torch.autograd.grad(loss.sum(), z)
    return (z - dt * alpha * grad).detach()


def _package_euler_step(decoder, x, z, dt, alpha):
    flow = GradientFlow(decoder, "bce", alpha=alpha)
    _, grad = flow.loss_and_grad(z, x)
    t = torch.zeros(len(z), dtype=z.dtype)
    return flow.euler_step(t, torch.full_like(t, dt), z, grad)


def _problem(batch: int, dt: float, alpha: float, z_scale: float):
    def make():
        decoder, x, z = small_problem(batch, batch)
        return dict(decoder=decoder, x=x, z=z_scale * z, dt=dt, alpha=alpha)

    return make


def _euler_fault(inputs: dict, mismatch: Mismatch) -> str:
    """Name the mistake when the student's step is the flow's step times a telling factor."""
    s, z, dt, alpha = mismatch.sample, inputs["z"], inputs["dt"], inputs["alpha"]
    want, got = mismatch.expected[s] - z[s], mismatch.got.to(z.dtype)[s] - z[s]
    if float(want @ want) > 0:
        ratio = float(got @ want / (want @ want))
        factors = {
            -1.0: "goes uphill: subtract dt * alpha * grad, do not add it",
            1 / len(z): f"is 1/{len(z)} of the flow's: differentiate the sum of the per-sample losses, not "
            f"their mean (the mean divides every sample's gradient by the batch size)",
            1 / alpha: "leaves out alpha",
            1 / dt: "leaves out dt",
            1 / (dt * alpha): "leaves out dt and alpha",
        }
        parallel = float((got - ratio * want).norm()) <= 1e-6 * float(want.norm())
        for factor, why in factors.items():
            if parallel and math.isclose(ratio, factor, rel_tol=1e-4):
                return f"your step for sample {s} {why}"
    expected, received = mismatch.values()
    return f"your step for sample {s} is not z - dt * alpha * grad_z l: expected {expected}, got {received}"


register(
    CodeExercise(
        name="euler_step",
        notebook="01_gradient_flow_2d",
        solution=euler_step,
        expected=_package_euler_step,
        cases=(
            Case("a batch of 4 (dt 0.3, alpha 2)", _problem(4, 0.3, 2.0, 1.0), _euler_fault),
            Case("a batch of 3 from z = 0 (dt 1, alpha 1)", _problem(3, 1.0, 1.0, 0.0), _euler_fault),
            Case("a single sample (dt 10, alpha 0.5)", _problem(1, 10.0, 0.5, 2.0), _euler_fault),
        ),
    )
)

register(
    PredictExercise(
        name="start_point",
        notebook="01_gradient_flow_2d",
        question="Image 3 is encoded from z0 = (0, 0). Start its flow at z0 = (1, 1) instead. What happens?",
        choices={
            "a": "it ends at a different minimum, with a clearly different loss",
            "b": "it ends near the same z*, after more decoder evaluations",
            "c": "it ends near the same z*, after fewer decoder evaluations",
            "d": "it never converges: AMD stops at tau",
        },
        answer="b",
        explanation="The landscape has one valley here and the flow from (1, 1) runs down into it and along it to "
        "almost the same z* (within 0.05), but the path is longer, so it costs more evaluations (the "
        "replay below: about twice as many).",
        feedback={
            "a": "Look at the landscape: how many valleys does it have near the path?",
            "c": "Is the path from (1, 1) shorter or longer than the one from (0, 0)?",
            "d": "AMD's convergence test does not care where the flow started.",
        },
    )
)
