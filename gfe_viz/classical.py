"""Classical ODE solvers on the same flows, through torchdiffeq: euler and rk4 (fixed step), dopri5.

These integrate the flow accurately (or try to) instead of watching the loss, which is the point
of the comparison with AMD: a fixed step beyond the stability limit of a stiff flow blows up, and
an accurate adaptive solver spends evaluations on accuracy the encoding does not need.
"""

from __future__ import annotations

import torch
from torch import nn
from torchdiffeq import odeint

from .flows import GradientFlow
from .solution import EncodeResult, SolverStats, Status, StepLog, Trajectory

FIXED_STEP = {"euler": 1, "rk4": 4}  # decoder evaluations per step
ADAPTIVE = ("dopri5",)


class _CountedField(nn.Module):
    """The flow's vector field for torchdiffeq, counting evaluations and logging adaptive steps.

    A sample whose derivative turns non-finite is frozen (zero derivative) and flagged, so that
    one diverging sample neither poisons an adaptive solver's error norm nor the other samples.
    """

    def __init__(self, flow: GradientFlow, x: torch.Tensor):
        super().__init__()
        self.flow, self.x = flow, x
        self.nfe = 0
        self.blew_up = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)

    def forward(self, t, state):
        self.nfe += 1
        field = self.flow.vector_field(t, state, self.x)
        bad = ~torch.isfinite(field).all(1) | self.blew_up
        self.blew_up |= bad
        return torch.where(bad.unsqueeze(1), torch.zeros_like(field), field)


class _LoggedField(_CountedField):
    """A counted field that also logs the adaptive solver's accepted and rejected steps."""

    def __init__(self, flow: GradientFlow, x: torch.Tensor):
        super().__init__(flow, x)
        self.step_log: list[tuple[float, float, bool]] = []

    def callback_accept_step(self, t0, y0, dt):
        self.step_log.append((float(t0), float(dt), True))

    def callback_reject_step(self, t0, y0, dt):
        self.step_log.append((float(t0), float(dt), False))


def solve_classical(flow: GradientFlow, x: torch.Tensor, z0: torch.Tensor, tau: float, method: str,
                    record: bool = False, dt: float = 1.0, rtol: float = 1e-6, atol: float = 1e-8,
                    n_save: int = 101) -> EncodeResult:
    """Integrate ``flow`` with torchdiffeq's ``method`` and return an :class:`EncodeResult`.

    ``dt`` is the step of euler and rk4; ``rtol``/``atol`` control dopri5. The state is saved at
    ``n_save`` evenly spaced times; a sample whose field or loss turns non-finite keeps its last
    finite saved state and gets status NON_FINITE.
    """
    field = _LoggedField(flow, x) if method in ADAPTIVE else _CountedField(flow, x)
    times = torch.linspace(0.0, tau, n_save, dtype=z0.dtype, device=z0.device)
    state0 = flow.initial_state(z0)
    options = {"step_size": dt} if method in FIXED_STEP else {}
    tolerances = {"rtol": rtol, "atol": atol} if method in ADAPTIVE else {}
    with torch.no_grad():
        states = odeint(field, state0, times, method=method, options=options, **tolerances)
    finite = torch.isfinite(states).all(2)  # (n_save, B); a frozen sample stays at its last finite state
    finite[0] = True
    last = (finite.long() * torch.arange(n_save, device=z0.device).unsqueeze(1)).argmax(0)
    last = torch.where(finite.all(0), n_save - 1, last)
    final = states[last, torch.arange(x.shape[0], device=z0.device)]
    position = flow.position(final)
    with torch.no_grad():
        loss = flow.loss(position, x)
    blew_up = field.blew_up | ~torch.isfinite(states[-1]).all(1) | ~torch.isfinite(loss)
    status = torch.where(blew_up, int(Status.NON_FINITE), int(Status.REACHED_TAU))
    nfe = torch.full((x.shape[0],), field.nfe + 1, dtype=torch.long, device=z0.device)
    if method in FIXED_STEP:
        n_accepted, n_rejected = field.nfe // FIXED_STEP[method], 0
    else:
        n_accepted = sum(accepted for *_, accepted in field.step_log)
        n_rejected = len(field.step_log) - n_accepted
    stats = SolverStats(nfe=nfe, accepted=torch.full_like(nfe, n_accepted), rejected=torch.full_like(nfe, n_rejected),
                        t=times[last], forced=torch.zeros_like(nfe))
    steps = trajectory = None
    if record:
        trajectory = Trajectory(t=times.unsqueeze(1).expand(-1, x.shape[0]).cpu(),
                                z=flow.position(states.reshape(-1, states.shape[-1])).reshape(n_save, x.shape[0], -1).cpu(),
                                accepted=finite.cpu())
        if method in ADAPTIVE and field.step_log:
            log = torch.tensor(field.step_log, dtype=torch.float64).unsqueeze(2).expand(-1, -1, x.shape[0])
            steps = StepLog(t=log[:, 0], dt=log[:, 1], accepted=log[:, 2].bool(),
                            loss=torch.full_like(log[:, 0], float("nan")), active=torch.ones_like(log[:, 2], dtype=torch.bool))
    return EncodeResult(z=position, loss=loss, status=status, stats=stats, solver=method, state=final,
                        steps=steps, trajectory=trajectory)
