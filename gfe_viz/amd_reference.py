"""AMD for one sample as a plain loop: the rules of :mod:`gfe_viz.amd` as a student reads them.

:func:`gfe_viz.amd.solve_amd` runs the same rules (its :class:`~gfe_viz.amd.StepController` and
:class:`~gfe_viz.amd.ConvergenceWindow`) on a whole batch at once, with masks, a working set that
shrinks as samples finish, and chunks of attempts between the host's checks. With
``acceptance="per_sample"`` every sample of a batch follows exactly this loop, which the tests use
as the oracle of the vectorised solver, sample by sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .amd import AMDOptions, ConvergenceWindow, StepController
from .flows import GradientFlow


@dataclass
class OneSampleSolve:
    """Where one sample's AMD solve ended: its latent z (d,), loss, time, and its attempts."""

    z: torch.Tensor
    loss: float
    t: float
    accepted: int  #: accepted attempts, forced steps included
    rejected: int
    forced: int  #: steps taken at the dt floor, each followed by a jump of ``fail_jump`` in time


def amd_one_sample(
    flow: GradientFlow, x: torch.Tensor, z0: torch.Tensor, tau: float, options: AMDOptions
) -> OneSampleSolve:
    """AMD with per-sample acceptance for one target ``x`` (1, ...) from ``z0`` (1, d) with a finite loss."""
    control = StepController.from_options(options)  # the acceptance test, forced steps, time jumps, next dt
    window = ConvergenceWindow.empty(1, z0, options, tau)  # the losses the convergence test looks at
    state = flow.initial_state(z0)
    loss, grad = flow.loss_and_grad(flow.position(state), x)
    t, dt, forced = z0.new_zeros(1), z0.new_full((1,), options.dt0), z0.new_zeros(1, dtype=torch.bool)
    accepted = rejected = jumps = 0
    for _ in range(options.max_attempts):
        candidate = flow.euler_step(t, dt, state, grad)  # the attempt: one Euler step of length dt
        loss1, grad1 = flow.loss_and_grad(flow.position(candidate), x)
        force_sq = flow.force_norm_sq(t + dt, grad1)
        finite = torch.isfinite(loss1 + force_sq)
        taken = control.takes(control.accepts(loss, loss1, dt, force_sq), forced, finite)
        if bool(taken):  # accepted (or forced at the floor): move
            state, loss, grad = candidate, loss1, grad1
            accepted, jumps = accepted + 1, jumps + int(forced)
        else:  # rejected: stay, and lose the momentum (second order)
            state = flow.keep_or_restart(state, candidate, taken)
            rejected += 1
            if bool(forced):  # not even the forced step gave a finite loss: the sample stops as non_finite
                break
        t, _ = control.advance(t, t + dt, taken, forced)  # + dt if taken, and a jump after a forced step
        dt, forced = control.next(dt, taken)  # grow or shrink; forced below the floor
        if control.stop_at_underflow and bool(forced):
            break
        window = window.push(t, taken, loss)  # records the loss of a step taken once t >= conv_after * tau
        if bool(window.converged()) or bool(t >= tau):
            break
    return OneSampleSolve(
        z=flow.position(state)[0], loss=float(loss), t=float(t), accepted=accepted, rejected=rejected, forced=jumps
    )
