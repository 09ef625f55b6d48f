"""AMD for one sample as a plain loop: the rules of :mod:`gfe_viz.amd` as a student reads them.

:func:`gfe_viz.amd.solve_amd` runs the same rules on a whole batch at once, with masks, a working
set that shrinks as samples finish, and chunks of attempts between the host's checks. With
``acceptance="per_sample"`` every sample of a batch follows exactly this loop, which the tests use
as the oracle of the vectorised solver, sample by sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .amd import CONV_WINDOW, AMDOptions, has_converged, mean_gradient_weights, next_step_size, sufficient_decrease
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


def amd_one_sample(flow: GradientFlow, x: torch.Tensor, z0: torch.Tensor, tau: float,
                   options: AMDOptions) -> OneSampleSolve:
    """AMD with per-sample acceptance for one target ``x`` (1, ...) from ``z0`` (1, d) with a finite loss."""
    state = flow.initial_state(z0)
    loss, grad = flow.loss_and_grad(flow.position(state), x)
    t, dt, forced = z0.new_zeros(1), z0.new_full((1,), options.dt0), torch.tensor([False])
    history, recorded, weights = z0.new_zeros(1, CONV_WINDOW), 0, mean_gradient_weights(z0)
    accepted = rejected = jumps = 0
    for _ in range(options.max_attempts):
        candidate = flow.euler_step(t, dt, state, grad)  # the attempt: one Euler step of length dt
        loss1, grad1 = flow.loss_and_grad(flow.position(candidate), x)
        force_sq = flow.force_norm_sq(t + dt, grad1)
        finite = bool(torch.isfinite(loss1 + force_sq))
        ok = finite and bool(forced | sufficient_decrease(loss, loss1, dt, force_sq, options))
        if ok:  # accepted (or forced at the floor): move, and after a forced step jump ahead in time
            state, loss, grad = candidate, loss1, grad1
            t = t + dt + (options.fail_jump if forced else 0.0)
            accepted, jumps = accepted + 1, jumps + int(forced)
        else:  # rejected: stay, and lose the momentum (second order)
            state = flow.keep_or_restart(state, candidate, torch.tensor([False]))
            rejected += 1
            if forced:  # not even the forced step gave a finite loss: the sample stops as non_finite
                break
        dt, forced = next_step_size(dt, torch.tensor([ok]), options)  # grow or shrink; forced below the floor
        if options.stop_at_underflow and bool(forced):
            break
        if ok and bool(t >= options.conv_after * tau):  # the convergence window: the last accepted losses
            history, recorded = torch.cat([history[:, 1:], loss.view(1, 1)], 1), recorded + 1
            if bool(has_converged(history, torch.tensor([recorded]), weights, options.conv_tol)):
                break
        if bool(t >= tau):
            break
    return OneSampleSolve(z=flow.position(state)[0], loss=float(loss), t=float(t), accepted=accepted,
                          rejected=rejected, forced=jumps)
