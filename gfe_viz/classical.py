"""Classical ODE solvers on the same flows, through torchdiffeq: euler and rk4 (fixed step), dopri5.

These integrate the flow accurately (or try to) instead of watching the loss, which is the point
of the comparison with AMD: a fixed step beyond the stability limit of a stiff flow blows up, and
an accurate adaptive solver spends evaluations on accuracy the encoding does not need.

dopri5's work is bounded like AMD's: after ``max_num_steps`` attempted steps, or once its step
falls below ``DT_FLOOR * tau`` (where torchdiffeq would stop with "underflow in dt"), the solve
ends with status ``step_limit`` or ``step_underflow`` at the last accepted state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn
from torchdiffeq import odeint

from .flows import GradientFlow
from .solution import EncodeResult, SolverStats, Status, StepLog, Trajectory

if TYPE_CHECKING:
    from .solvers import Dopri5, FixedStep

MAX_NUM_STEPS = 10_000  #: default limit on dopri5's attempted steps (accepted and rejected)
DT_FLOOR = 1e-12  #: dopri5 stops as step_underflow once its step is below DT_FLOOR * tau


class _CountedField(nn.Module):
    """The flow's vector field for torchdiffeq, counting evaluations.

    A sample whose derivative turns non-finite (or its squared norm overflows, AMD's test) is
    frozen (zero derivative) and flagged, so that one diverging sample neither poisons an adaptive
    solver's error norm nor the other samples. Once ``stopped`` is set every derivative is zero
    and the decoder is no longer evaluated.
    """

    def __init__(self, flow: GradientFlow, x: torch.Tensor):
        super().__init__()
        self.flow, self.x = flow, x
        self.nfe = 0
        self.blew_up = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        self.stopped: Status | None = None

    def forward(self, t, state):
        if self.stopped is not None:
            return torch.zeros_like(state)
        self.nfe += 1
        field = self.flow.vector_field(t, state, self.x)
        bad = ~torch.isfinite(field.square().sum(1)) | self.blew_up
        self.blew_up |= bad
        return torch.where(bad.unsqueeze(1), torch.zeros_like(field), field)


class _AdaptiveField(_CountedField):
    """A counted field that logs the adaptive solver's accepted and rejected steps and stops the
    solve at the step limit or the dt floor, keeping the last accepted state and its time."""

    def __init__(self, flow: GradientFlow, x: torch.Tensor, max_num_steps: int, dt_floor: float):
        super().__init__(flow, x)
        self.max_num_steps, self.dt_floor = max_num_steps, dt_floor
        self.step_log: list[tuple[float, float, bool]] = []
        self.stop_t: float | None = None
        self.stop_state: torch.Tensor | None = None

    def callback_step(self, t0, y0, dt):  # before every attempt, with the last accepted state
        if self.stopped is None and (len(self.step_log) >= self.max_num_steps or dt <= self.dt_floor):
            self.stopped = Status.STEP_LIMIT if len(self.step_log) >= self.max_num_steps else Status.STEP_UNDERFLOW
            self.stop_t, self.stop_state = float(t0), y0.detach().clone()

    def callback_accept_step(self, t0, y0, dt):
        if self.stopped is None:
            self.step_log.append((float(t0), float(dt), True))

    def callback_reject_step(self, t0, y0, dt):
        if self.stopped is None:
            self.step_log.append((float(t0), float(dt), False))


def solve_classical(
    flow: GradientFlow, x: torch.Tensor, z0: torch.Tensor, tau: float, solver: FixedStep | Dopri5, record: bool = False
) -> EncodeResult:
    """Integrate ``flow`` with torchdiffeq's method named ``solver.name`` and return an :class:`EncodeResult`.

    ``solver`` (a :class:`~gfe_viz.solvers.Euler`, :class:`~gfe_viz.solvers.RK4` or
    :class:`~gfe_viz.solvers.Dopri5`) gives the step ``dt`` or the tolerances and ``max_num_steps``
    (see the module docstring). The state is saved at ``solver.n_save`` evenly spaced times; a
    sample whose field or loss turns non-finite gets status NON_FINITE and keeps its last saved
    state with a finite loss (z0 if there is none). A recorded trajectory holds the loss at every
    saved state and the evaluations spent to reach it (``solver.nfe_at``).
    """
    adaptive, n_save = solver.adaptive, solver.n_save
    field = _AdaptiveField(flow, x, solver.max_num_steps, DT_FLOOR * tau) if adaptive else _CountedField(flow, x)
    times = torch.linspace(0.0, tau, n_save, dtype=z0.dtype, device=z0.device)
    state0 = flow.initial_state(z0)
    # at min_step torchdiffeq accepts the step, so a solve stopped at the dt floor runs out to tau at once
    options = {"min_step": field.dt_floor} if adaptive else {"step_size": solver.dt}
    tolerances = {"rtol": solver.rtol, "atol": solver.atol} if adaptive else {}
    with torch.no_grad():
        states = odeint(field, state0, times, method=solver.name, options=options, **tolerances)
    batch = torch.arange(x.shape[0], device=z0.device)
    stop_t = tau if field.stopped is None else field.stop_t
    if field.stopped is not None:  # the solve ended at stop_t: later saves hold the state it stopped at
        states[times > stop_t] = field.stop_state
    with torch.no_grad():
        loss = flow.loss(flow.position(states[-1]), x)
    blew_up = field.blew_up | ~torch.isfinite(states[-1]).all(1) | ~torch.isfinite(loss)
    last = torch.full_like(batch, n_save - 1)
    if bool(blew_up.any()):
        last[blew_up] = _last_finite_loss(flow, states[:, blew_up], x[blew_up])
    final = states[last, batch]
    position = flow.position(final)
    if bool(blew_up.any()):
        with torch.no_grad():
            loss[blew_up] = flow.loss(position[blew_up], x[blew_up])
    stopped = int(Status.REACHED_TAU) if field.stopped is None else int(field.stopped)
    status = torch.where(blew_up, int(Status.NON_FINITE), stopped)
    nfe = torch.full((x.shape[0],), field.nfe + 1, dtype=torch.long, device=z0.device)
    if adaptive:
        n_accepted = sum(accepted for *_, accepted in field.step_log)
        n_rejected = len(field.step_log) - n_accepted
    else:
        n_accepted, n_rejected = field.nfe // solver.evaluations_per_step, 0
    stats = SolverStats(
        nfe=nfe,
        accepted=torch.full_like(nfe, n_accepted),
        rejected=torch.full_like(nfe, n_rejected),
        t=times[last].clamp(max=stop_t),
        forced=torch.zeros_like(nfe),
    )
    steps = trajectory = None
    if record:
        trajectory = _saved_trajectory(flow, x, solver, states, times, stop_t, field)
        if adaptive and field.step_log:
            log = torch.tensor(field.step_log, dtype=torch.float64).unsqueeze(2).expand(-1, -1, x.shape[0])
            steps = StepLog(
                t=log[:, 0],
                dt=log[:, 1],
                accepted=log[:, 2].bool(),
                loss=torch.full_like(log[:, 0], float("nan")),
                active=torch.ones_like(log[:, 2], dtype=torch.bool),
            )
    return EncodeResult(
        z=position,
        loss=loss,
        status=status,
        stats=stats,
        solver=solver.name,
        flow=flow,
        state=final,
        steps=steps,
        trajectory=trajectory,
    )


def _saved_trajectory(
    flow: GradientFlow,
    x: torch.Tensor,
    solver: FixedStep | Dopri5,
    states: torch.Tensor,
    times: torch.Tensor,
    stop_t: float,
    field: _CountedField,
) -> Trajectory:
    """The saved states (n_save, B, D) as a :class:`Trajectory` on the CPU, with the loss at each
    (evaluated in one batch; NaN where the state is not finite or after the solve stopped) and the
    evaluations spent to reach it."""
    n_save, batch = states.shape[:2]
    new = torch.isfinite(states).all(2) & (times <= stop_t).unsqueeze(1)
    new[0] = True
    positions = flow.position(states.reshape(n_save * batch, -1))
    with torch.no_grad():
        losses = flow.loss(positions, x.repeat(n_save, *[1] * (x.dim() - 1))).reshape(n_save, batch)
    nfe = solver.nfe_at(times.double().cpu(), field.step_log if solver.adaptive else [], field.nfe + 1)
    return Trajectory(
        t=times.unsqueeze(1).expand(-1, batch).cpu(),
        z=positions.reshape(n_save, batch, -1).cpu(),
        accepted=new.cpu(),
        loss=torch.where(new, losses, torch.nan).cpu(),
        nfe=nfe.long().unsqueeze(1).expand(-1, batch).clone(),
    )


def _last_finite_loss(flow: GradientFlow, states: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """For saved states (n_save, n, D) of n samples: each sample's last save index whose state and
    loss are finite (0, its z0, when there is none), one decoder forward per saved time."""
    with torch.no_grad():
        good = torch.stack([torch.isfinite(flow.loss(flow.position(s), x)) & torch.isfinite(s).all(1) for s in states])
    good[0] = True
    index = torch.arange(states.shape[0], device=states.device).unsqueeze(1)
    return (good.long() * index).argmax(0)
