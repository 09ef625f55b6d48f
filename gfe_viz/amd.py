"""The AMD solver (adaptive minimise distance): Euler steps accepted only on sufficient loss decrease.

One attempt from (z0, t, dt) proposes z1 = step(z0, dt) and accepts it when

    l(z0) - l(z1) >= sigma * dt * dt_max * ||alpha(t + dt) grad l(z1)||^2

(the gradient at the candidate, with the extra dt_max factor, as in the reference). On rejection
dt *= shrink; once dt falls below shrink**max_shrinks the next step is taken anyway and t jumps by
fail_jump. After an acceptance dt = min(max(dt0, grow * dt), dt_max). Once t >= conv_after * tau
the loss of each accepted step is recorded, and the solve stops when the mean of
``numpy.gradient`` over the last 5 recorded values is below conv_tol in absolute value;
otherwise it stops at t >= tau. A sample still integrating after ``max_attempts`` attempts stops
with status ``step_limit`` (a huge tau would otherwise run for billions of steps).

With ``stop_at_underflow`` a sample stops where its dt falls below the floor, with status
``step_underflow``, instead of taking the forced step. Every step from dt_max down to the floor
failed the decrease test there, which for a smooth loss means the sample sits at a minimum to the
resolution of its floating-point loss; the forced steps and the twenty-odd rejections before each
of them would only spend decoder evaluations until the convergence test starts. In ``batch``
mode the whole batch stops at once.

``acceptance="batch"`` reproduces the reference: one dt, a step accepted only when every sample
passes, the batch-mean loss in the convergence test. ``acceptance="per_sample"`` gives every
sample its own t, dt, acceptance, failure handling and convergence; finished samples leave the
working set and cost no more decoder evaluations.

Each attempt costs exactly one decoder forward+backward: the loss and gradient at an accepted
candidate are reused as the start of the next attempt. The loop synchronises with the host once
per attempt, to learn whether any sample finished.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch

from ._checks import check_non_negative, check_positive
from .flows import GradientFlow
from .solution import EncodeResult, SolverStats, Status, StepLog, Trajectory

ACCEPTANCE_MODES = ("per_sample", "batch")
CONV_WINDOW = 5
# mean(numpy.gradient(y)) for 5 equally spaced values y0..y4, as weights on y0..y4
_MEAN_GRADIENT_WEIGHTS = (-1.5 / 5, 0.5 / 5, 0.0, -0.5 / 5, 1.5 / 5)


@dataclass(frozen=True)
class AMDOptions:
    """AMD step-control settings; the defaults are the reference code's defaults."""

    dt0: float = 1.0  #: first dt, and floor of dt after each accepted step
    dt_max: float = 10.0  #: cap on dt; also multiplies the acceptance right-hand side
    shrink: float = 0.75  #: dt *= shrink after a rejection
    grow: float = 1.1  #: dt *= grow after an acceptance
    sigma: float = 1e-5  #: sufficient-decrease constant
    max_shrinks: int = 50  #: failure once dt < shrink ** max_shrinks
    conv_tol: float = 1e-9  #: convergence threshold on the mean loss gradient
    conv_after: float = 0.1  #: fraction of tau after which the convergence test runs
    fail_jump: float = 100.0  #: time jump taken on failure
    max_attempts: int = 100_000  #: attempts after which the samples still integrating stop as ``step_limit``
    #: stop a sample where its dt falls below the floor (status ``step_underflow``) instead of forcing a step
    stop_at_underflow: bool = False

    def __post_init__(self):
        check_positive("dt0", self.dt0)
        check_positive("dt_max", self.dt_max)
        if self.dt_max < self.dt0:
            raise ValueError(f"dt_max must be >= dt0={self.dt0}, got {self.dt_max!r}")
        if not isinstance(self.shrink, (int, float)) or not 0 < self.shrink < 1:
            raise ValueError(f"shrink must be in the open interval (0, 1), got {self.shrink!r}")
        if not isinstance(self.grow, (int, float)) or not self.grow >= 1:
            raise ValueError(f"grow must be >= 1, got {self.grow!r}")
        check_non_negative("sigma", self.sigma)
        if isinstance(self.max_shrinks, bool) or not isinstance(self.max_shrinks, int) or self.max_shrinks < 1:
            raise ValueError(f"max_shrinks must be a positive integer, got {self.max_shrinks!r}")
        check_non_negative("conv_tol", self.conv_tol)
        if not isinstance(self.conv_after, (int, float)) or not 0 <= self.conv_after <= 1:
            raise ValueError(f"conv_after must be in [0, 1], got {self.conv_after!r}")
        check_non_negative("fail_jump", self.fail_jump)
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ValueError(f"max_attempts must be a positive integer, got {self.max_attempts!r}")
        if not isinstance(self.stop_at_underflow, bool):
            raise ValueError(f"stop_at_underflow must be True or False, got {self.stop_at_underflow!r}")

    @property
    def dt_floor(self) -> float:
        return self.shrink**self.max_shrinks

    def replace(self, **changes) -> "AMDOptions":
        """A copy with some fields changed; unknown names raise TypeError."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise TypeError(f"unknown AMD option(s) {sorted(unknown)}; expected some of {[f.name for f in fields(self)]}")
        return AMDOptions(**{**asdict(self), **changes})


#: The authors' MNIST / FashionMNIST configuration.
AMD_MNIST = AMDOptions(dt0=1.0, dt_max=10.0, shrink=0.5, grow=1.1, sigma=1e-5, max_shrinks=20,
                       conv_tol=1e-5, conv_after=0.02, fail_jump=10.0)


def mean_gradient_weights(like: torch.Tensor) -> torch.Tensor:
    """The (5,) weights w with ``history @ w == numpy.gradient(history).mean()`` for each row of a
    (n, 5) history, so the convergence test never leaves the device; on ``like``'s device and
    dtype, made once per solve (building a tensor costs as much as an op)."""
    return like.new_tensor(_MEAN_GRADIENT_WEIGHTS)


def sufficient_decrease(loss0: torch.Tensor, loss1: torch.Tensor, dt: torch.Tensor, force_sq1: torch.Tensor,
                        options: AMDOptions) -> torch.Tensor:
    """AMD's acceptance test per sample: l(z0) - l(z1) >= sigma * dt_max * dt * ||f(z1)||^2.

    ``force_sq1`` is the squared force at the candidate z1 (not at z0, as the textbook Armijo rule has it).
    """
    return (loss0 - loss1) >= (options.sigma * options.dt_max) * dt * force_sq1


def next_step_size(dt: torch.Tensor, accepted: torch.Tensor, options: AMDOptions) -> tuple[torch.Tensor, torch.Tensor]:
    """The step size after an attempt, and whether the next attempt is forced, per sample.

    After an acceptance dt = min(max(dt0, grow * dt), dt_max); after a rejection dt *= shrink, and the
    next attempt is forced (taken whatever its loss) once the shrunk dt is below ``options.dt_floor``.
    """
    shrunk = dt * options.shrink
    grown = (dt * options.grow).clamp(options.dt0, options.dt_max)
    return torch.where(accepted, grown, shrunk), ~accepted & (shrunk < options.dt_floor)


def has_converged(history: torch.Tensor, n_recorded: torch.Tensor, weights: torch.Tensor,
                  conv_tol: float) -> torch.Tensor:
    """AMD's convergence test per row of ``history`` (n, 5), the last CONV_WINDOW recorded losses:
    at least CONV_WINDOW recorded and |mean(numpy.gradient(history))| < conv_tol, with ``weights``
    from :func:`mean_gradient_weights`."""
    return (n_recorded >= CONV_WINDOW) & ((history @ weights).abs() < conv_tol)


class _Recorder:
    """Collects every attempt of a solve into full-batch (A, B) tensors on the CPU."""

    def __init__(self, batch: int, state0: torch.Tensor, flow: GradientFlow):
        self.batch, self.flow = batch, flow
        self.rows: dict[str, list[torch.Tensor]] = {k: [] for k in ("t", "dt", "accepted", "loss", "active")}
        z0 = flow.position(state0).detach().cpu()
        self.positions, self.times = [z0], [torch.zeros(batch, dtype=z0.dtype)]
        self.new_position = [torch.ones(batch, dtype=torch.bool)]

    def add(self, idx, t, dt, accepted, loss, state, t_after):
        def full(values, fill, dtype=None):
            out = torch.full((self.batch,), fill, dtype=dtype or values.dtype)
            out[idx.cpu()] = values.detach().cpu().to(out.dtype)
            return out

        dtype = self.positions[0].dtype
        self.rows["t"].append(full(t, float("nan"), dtype))
        self.rows["dt"].append(full(dt, 0.0, dtype))
        self.rows["accepted"].append(full(accepted, False, torch.bool))
        self.rows["loss"].append(full(loss, float("nan"), dtype))
        self.rows["active"].append(_mask(self.batch, idx))
        position = self.positions[-1].clone()
        position[idx.cpu()] = self.flow.position(state).detach().cpu()
        times = self.times[-1].clone()
        times[idx.cpu()] = t_after.detach().cpu().to(dtype)
        self.positions.append(position)
        self.times.append(times)
        self.new_position.append(self.rows["accepted"][-1])

    def logs(self) -> tuple[StepLog, Trajectory]:
        steps = StepLog(**{k: torch.stack(v) if v else torch.empty(0, self.batch) for k, v in self.rows.items()})
        trajectory = Trajectory(t=torch.stack(self.times), z=torch.stack(self.positions),
                                accepted=torch.stack(self.new_position))
        return steps, trajectory


def _mask(batch: int, idx: torch.Tensor) -> torch.Tensor:
    mask = torch.zeros(batch, dtype=torch.bool)
    mask[idx.cpu()] = True
    return mask


def solve_amd(flow: GradientFlow, x: torch.Tensor, z0: torch.Tensor, tau: float, options: AMDOptions,
              acceptance: str = "per_sample", record: bool = False, progress=None) -> EncodeResult:
    """Integrate ``flow`` from ``z0`` for targets ``x`` with AMD; see the module docstring.

    ``progress``, if given, is called with the number of finished samples whenever it changes.
    """
    opts, batch_mode = options, acceptance == "batch"
    B, device, dtype = x.shape[0], z0.device, z0.dtype
    state = flow.initial_state(z0)

    def zeros(dtype_=torch.long):
        return torch.zeros(B, dtype=dtype_, device=device)

    # final values, written when a sample leaves the working set
    out = {"state": state.clone(), "loss": zeros(dtype), "status": zeros(), "nfe": zeros(), "accepted": zeros(),
           "forced": zeros(), "t": zeros(dtype)}

    # the working set: samples still integrating
    idx, xs = torch.arange(B, device=device), x
    loss, grad = flow.loss_and_grad(flow.position(state), xs)
    t, dt = zeros(dtype), torch.full((B,), opts.dt0, dtype=dtype, device=device)
    forced, last_forced, converged, stalled = (zeros(torch.bool) for _ in range(4))
    n_accepted, n_forced, n_history = zeros(), zeros(), zeros()
    history = torch.zeros(B, CONV_WINDOW, dtype=dtype, device=device)
    slope_weights = mean_gradient_weights(history)
    stop_nonfinite = ~torch.isfinite(loss + grad.square().sum(1))
    done = stop_nonfinite.clone()
    conv_start = opts.conv_after * tau
    recorder = _Recorder(B, state, flow) if record else None

    attempt, n_finished = 0, 0
    with torch.no_grad():
        while True:
            if bool(done.any()):  # the one host synchronisation per attempt
                fin, keep = done, ~done
                status = torch.where(stop_nonfinite, int(Status.NON_FINITE), torch.where(
                    converged, int(Status.CONVERGED), torch.where(stalled, int(Status.STEP_UNDERFLOW), torch.where(
                        t < tau, int(Status.STEP_LIMIT), torch.where(
                            last_forced, int(Status.STEP_UNDERFLOW), int(Status.REACHED_TAU))))))
                fin_idx = idx[fin]
                for name, value in (("state", state), ("loss", loss), ("status", status), ("accepted", n_accepted),
                                    ("forced", n_forced), ("t", t)):
                    out[name][fin_idx] = value[fin]
                out["nfe"][fin_idx] = attempt + 1
                idx, xs, state, loss, grad = idx[keep], xs[keep], state[keep], loss[keep], grad[keep]
                t, dt, forced, last_forced, stalled = t[keep], dt[keep], forced[keep], last_forced[keep], stalled[keep]
                n_accepted, n_forced = n_accepted[keep], n_forced[keep]
                history, n_history = history[keep], n_history[keep]
                n_finished += fin_idx.numel()
                if progress is not None:
                    progress(n_finished)
                if idx.numel() == 0:
                    break
            attempt += 1

            candidate = flow.euler_step(t, dt, state, grad)
            loss1, grad1 = flow.loss_and_grad(flow.position(candidate), xs)
            t1 = t + dt
            force_sq = flow.force_norm_sq(t1, grad1)
            finite = (loss1 + force_sq).abs() < math.inf  # torch.isfinite, in one op instead of four
            decrease = sufficient_decrease(loss, loss1, dt, force_sq, opts)
            if batch_mode:
                decrease = decrease.all().expand_as(decrease)
            ok = (decrease | forced) & finite
            stop_nonfinite = forced & ~finite

            state = flow.keep_or_restart(state, candidate, ok)
            loss = torch.where(ok, loss1, loss)
            grad = torch.where(ok.unsqueeze(1), grad1, grad)
            jumped = ok & forced
            t_next = torch.where(ok, t1, t) + jumped * opts.fail_jump
            if recorder is not None:
                recorder.add(idx, t, dt, ok, loss1, state, t_next)
            t = t_next
            n_accepted += ok
            n_forced += jumped
            last_forced = torch.where(ok, forced, last_forced)
            dt, forced = next_step_size(dt, ok, opts)
            if opts.stop_at_underflow:
                stalled = forced

            # convergence: record the loss of accepted steps once t >= conv_after * tau
            push = ok & (t >= conv_start)
            value = loss.mean().expand_as(loss) if batch_mode else loss
            history = torch.where(push.unsqueeze(1), torch.cat([history[:, 1:], value.unsqueeze(1)], 1), history)
            n_history += push
            converged = has_converged(history, n_history, slope_weights, opts.conv_tol)
            done = stop_nonfinite | converged | stalled | (t >= tau)
            if attempt >= opts.max_attempts:
                done = torch.ones_like(done)

    nfe = out["nfe"]
    stats = SolverStats(nfe=nfe, accepted=out["accepted"], rejected=nfe - 1 - out["accepted"], t=out["t"],
                        forced=out["forced"])
    steps, trajectory = recorder.logs() if recorder is not None else (None, None)
    return EncodeResult(z=flow.position(out["state"]), loss=out["loss"], status=out["status"], stats=stats,
                        solver="amd", state=out["state"], steps=steps, trajectory=trajectory)
