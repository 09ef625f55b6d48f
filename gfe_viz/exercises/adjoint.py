"""Notebook 04's exercises: the approximate adjoint's decoder gradient at a detached z*, and how the two
adjoints agree as the solve converges."""

from __future__ import annotations

import math

import torch

from ..adjoint import approximate_adjoint_gradient
from ..flows import GradientFlow
from ..losses import bce_logits
from .core import Case, CodeExercise, Mismatch, PredictExercise, register, small_problem


def approximate_adjoint(decoder, x, z_star):
    """The approximate adjoint's decoder gradient: d L / d theta of L = mean_m bce_logits(decoder(z*_m), x_m),
    with z* held fixed (detached), so no gradient flows back along the path that found it.

    x: targets (B, P); z_star: latents (B, d), which may still be attached to the decoder's graph.
    Return a list with one gradient per tensor of decoder.parameters(), in that order.
    """
    loss = bce_logits(decoder(z_star.detach()), x).mean()
    return list(torch.autograd.grad(loss, list(decoder.parameters())))


def _package_gradient(decoder, x, z_star):
    return approximate_adjoint_gradient(GradientFlow(decoder, "bce"), x, z_star)[1]


def _problem(batch: int, attached: bool):
    """A small decoder, targets and a z*; ``attached``: z* is one Euler step from z0 built with the
    decoder's graph, so a gradient that does not detach it picks up the path term."""

    def make():
        decoder, x, z0 = small_problem(10 + batch, batch)
        if attached:
            z0.requires_grad_(True)
            (grad,) = torch.autograd.grad(bce_logits(decoder(z0), x).sum(), z0, create_graph=True)
            z_star = z0.detach() - 5.0 * grad
        else:
            z_star = z0
        return dict(decoder=decoder, x=x, z_star=z_star)

    return make


def _gradient_fault(attached: bool):
    def fault(inputs: dict, mismatch: Mismatch) -> str:
        names = [name for name, _ in inputs["decoder"].named_parameters()]
        name, batch = names[mismatch.part], len(inputs["x"])
        want, got = mismatch.expected.flatten(), mismatch.got.to(torch.float64).flatten()
        ratio = float(got @ want / (want @ want))
        if batch > 1 and math.isclose(ratio, batch, rel_tol=1e-4):
            return (
                f"your gradient of {name} is {batch} times too large: the training loss is the mean over "
                f"the batch, not the sum"
            )
        if attached:
            return (
                f"your gradient of {name} includes the path through z*: detach z* (the approximation "
                f"drops the trajectory term)"
            )
        return f"your gradient of {name} differs from d_theta mean_m l(x_m, D(z*_m)) at z*"

    return fault


register(
    CodeExercise(
        name="approximate_adjoint",
        notebook="04_training_the_decoder",
        solution=approximate_adjoint,
        expected=_package_gradient,
        cases=(
            Case("a batch of 4, z* a plain tensor", _problem(4, attached=False), _gradient_fault(False)),
            Case(
                "a batch of 3, z* one Euler step attached to the decoder",
                _problem(3, attached=True),
                _gradient_fault(True),
            ),
            Case("a single sample", _problem(1, attached=False), _gradient_fault(False)),
        ),
    )
)

register(
    PredictExercise(
        name="adjoint_agreement",
        notebook="04_training_the_decoder",
        question="Encode a batch for longer and longer horizons tau and compare the two decoder gradients at each z*. "
        "What happens to their agreement (cosine similarity and norm ratio) at the longest horizons?",
        choices={
            "a": "they agree better and better: cosine and norm ratio approach 1",
            "b": "they drift apart: the longer the path, the more the dropped trajectory term weighs",
            "c": "they agree exactly at every tau: the two gradients are the same",
            "d": "no trend: the agreement depends only on the batch",
        },
        answer="a",
        explanation="The full adjoint's extra term is weighted by lambda, which starts at grad_z l at z*: as z* "
        "approaches a stationary point that gradient vanishes and the two gradients become equal. "
        "Part-way through the solve their lengths can differ by several percent.",
        feedback={
            "b": "What is grad_z l at a stationary point, and which term does it multiply?",
            "c": "The approximation drops a term: when is that term zero?",
            "d": "Think about what grad_z l does at z* as tau grows.",
        },
    )
)
