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
candidate are reused as the start of the next attempt.

:mod:`gfe_viz.amd_reference` spells the same rules out for one sample as a plain loop, the
oracle that ``per_sample`` acceptance matches sample by sample; :class:`gfe_viz.solvers.AMD` is
the solver object that :func:`gfe_viz.encode` runs this module with.

The host learns whether a sample finished once every ``check_every`` attempts (one
synchronisation each time; 1 by default). Between two checks the attempts run as a *chunk*: a
sample that finishes inside it is frozen by a mask (no value of it changes and the attempts after
its end are not counted), and finished samples leave the working set at the next check, so z,
loss, status and counts are those of checking after every attempt. The attempts after a sample's
end still evaluate the decoder on its row: larger chunks trade those rows for fewer waits on the
host, which pays on a GPU, where an attempt at small batch is some fifty tiny kernels. With
``cuda_graph`` a chunk is captured once as a CUDA graph and replayed, and finished samples stay
in the working set, frozen, until the last one finishes. The one difference a mask can make: in
``batch`` mode, once a non-finite sample has stopped inside a chunk (or anywhere, with a graph),
the batch mean sums the same losses with zeros in between, which may round differently.
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
    """Collects every attempt of a solve into full-batch (A, B) tensors on the CPU, with each
    sample's position, time and loss after every attempt."""

    def __init__(self, batch: int, state0: torch.Tensor, loss0: torch.Tensor, flow: GradientFlow):
        self.batch, self.flow = batch, flow
        self.rows: dict[str, list[torch.Tensor]] = {k: [] for k in ("t", "dt", "accepted", "loss", "active")}
        z0 = flow.position(state0).detach().cpu()
        self.positions, self.times = [z0], [torch.zeros(batch, dtype=z0.dtype)]
        self.losses = [loss0.detach().cpu().to(z0.dtype)]
        self.new_position = [torch.ones(batch, dtype=torch.bool)]

    def add(self, idx, t, dt, accepted, loss, state, t_after, loss_after, active=None):
        """One attempt on the working set ``idx``: ``loss`` at the candidate, ``loss_after`` at the
        position the attempt leaves; with ``active``, of its rows in the mask (none: no row)."""
        if active is not None:
            if not bool(active.any()):  # every sample finished earlier in the chunk
                return
            idx, t, dt, accepted, loss, state, t_after, loss_after = (
                v[active] for v in (idx, t, dt, accepted, loss, state, t_after, loss_after))
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
        losses = self.losses[-1].clone()
        losses[idx.cpu()] = loss_after.detach().cpu().to(dtype)
        self.positions.append(position)
        self.times.append(times)
        self.losses.append(losses)
        self.new_position.append(self.rows["accepted"][-1])

    def logs(self, nfe: torch.Tensor) -> tuple[StepLog, Trajectory]:
        """The step log and the trajectory; ``nfe`` (B,), each sample's final count, caps the
        evaluations per row (attempt k has cost k + 1, the first evaluation at z0 included)."""
        steps = StepLog(**{k: torch.stack(v) if v else torch.empty(0, self.batch) for k, v in self.rows.items()})
        rows = torch.arange(1, len(self.positions) + 1).unsqueeze(1)
        trajectory = Trajectory(t=torch.stack(self.times), z=torch.stack(self.positions),
                                accepted=torch.stack(self.new_position), loss=torch.stack(self.losses),
                                nfe=torch.minimum(rows, nfe.cpu().unsqueeze(0)))
        return steps, trajectory


def _mask(batch: int, idx: torch.Tensor) -> torch.Tensor:
    mask = torch.zeros(batch, dtype=torch.bool)
    mask[idx.cpu()] = True
    return mask


def _frozen(active: torch.Tensor | None, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """``new`` for the samples still integrating, ``old`` for the finished ones (``active`` None: all integrate)."""
    if active is None:
        return new
    return torch.where(active.unsqueeze(1) if new.dim() == 2 else active, new, old)


#: the per-sample tensors of the working set (see :class:`_WorkingSet`)
_PER_SAMPLE = ("idx", "xs", "state", "loss", "grad", "t", "dt", "forced", "last_forced", "converged", "stalled",
               "stop_nonfinite", "done", "n_accepted", "n_forced", "history", "n_history", "idle")


class _WorkingSet:
    """The samples of one AMD solve that are still in play, and one attempt of the solver on them.

    Every attribute named in :data:`_PER_SAMPLE` has one row per sample; :meth:`compact` keeps
    some rows. :meth:`attempt` with ``active`` None updates every row; with an ``active`` mask the
    other rows (samples that finished earlier in the chunk) keep every value they had, and their
    ``idle`` count grows by one, so a chunk of attempts gives the results of single attempts.
    """

    def __init__(self, flow: GradientFlow, x: torch.Tensor, z0: torch.Tensor, tau: float, opts: AMDOptions,
                 batch_mode: bool):
        self.flow, self.tau, self.opts, self.batch_mode = flow, tau, opts, batch_mode
        B, device, dtype = x.shape[0], z0.device, z0.dtype

        def zeros(dtype_=torch.long):
            return torch.zeros(B, dtype=dtype_, device=device)

        self.idx, self.xs = torch.arange(B, device=device), x
        self.state = flow.initial_state(z0)
        self.loss, self.grad = flow.loss_and_grad(flow.position(self.state), x)
        self.t, self.dt = zeros(dtype), torch.full((B,), opts.dt0, dtype=dtype, device=device)
        self.forced, self.last_forced, self.converged, self.stalled = (zeros(torch.bool) for _ in range(4))
        self.n_accepted, self.n_forced, self.n_history, self.idle = zeros(), zeros(), zeros(), zeros()
        self.history = torch.zeros(B, CONV_WINDOW, dtype=dtype, device=device)
        self.slope_weights = mean_gradient_weights(self.history)
        self.stop_nonfinite = ~torch.isfinite(self.loss + self.grad.square().sum(1))
        self.done = self.stop_nonfinite.clone()
        self.conv_start = opts.conv_after * tau

    def compact(self, keep: torch.Tensor) -> None:
        for name in _PER_SAMPLE:
            setattr(self, name, getattr(self, name)[keep])

    def status(self) -> torch.Tensor:
        """Each sample's :class:`Status`, meaningful for the finished ones."""
        return torch.where(self.stop_nonfinite, int(Status.NON_FINITE), torch.where(
            self.converged, int(Status.CONVERGED), torch.where(self.stalled, int(Status.STEP_UNDERFLOW), torch.where(
                self.t < self.tau, int(Status.STEP_LIMIT), torch.where(
                    self.last_forced, int(Status.STEP_UNDERFLOW), int(Status.REACHED_TAU))))))

    def attempt(self, active: torch.Tensor | None = None, recorder: "_Recorder | None" = None) -> None:
        """One attempt for the samples in ``active`` (None: all of them); see the module docstring."""
        flow, opts = self.flow, self.opts
        t, dt, forced = self.t, self.dt, self.forced
        candidate = flow.euler_step(t, dt, self.state, self.grad)
        loss1, grad1 = flow.loss_and_grad(flow.position(candidate), self.xs)
        t1 = t + dt
        force_sq = flow.force_norm_sq(t1, grad1)
        finite = (loss1 + force_sq).abs() < math.inf  # torch.isfinite, in one op instead of four
        decrease = sufficient_decrease(self.loss, loss1, dt, force_sq, opts)
        if self.batch_mode:
            decrease = (decrease if active is None else decrease | ~active).all().expand_as(decrease)
        ok = (decrease | forced) & finite
        if active is not None:
            ok = ok & active
            self.idle += ~active
        self.stop_nonfinite = _frozen(active, forced & ~finite, self.stop_nonfinite)

        self.state = _frozen(active, flow.keep_or_restart(self.state, candidate, ok), self.state)
        self.loss = torch.where(ok, loss1, self.loss)
        self.grad = torch.where(ok.unsqueeze(1), grad1, self.grad)
        jumped = ok & forced
        self.t = torch.where(ok, t1, t) + jumped * opts.fail_jump
        if recorder is not None:
            recorder.add(self.idx, t, dt, ok, loss1, self.state, self.t, self.loss, active)
        self.n_accepted += ok
        self.n_forced += jumped
        self.last_forced = torch.where(ok, forced, self.last_forced)
        dt_next, forced_next = next_step_size(dt, ok, opts)
        self.dt = _frozen(active, dt_next, dt)
        self.forced = _frozen(active, forced_next, forced)
        if opts.stop_at_underflow:
            self.stalled = self.forced

        # convergence: record the loss of accepted steps once t >= conv_after * tau
        push = ok & (self.t >= self.conv_start)
        value = _batch_mean(self.loss, active).expand_as(self.loss) if self.batch_mode else self.loss
        self.history = torch.where(push.unsqueeze(1), torch.cat([self.history[:, 1:], value.unsqueeze(1)], 1),
                                   self.history)
        self.n_history += push
        self.converged = has_converged(self.history, self.n_history, self.slope_weights, opts.conv_tol)
        self.done = self.stop_nonfinite | self.converged | self.stalled | (self.t >= self.tau)


def _batch_mean(loss: torch.Tensor, active: torch.Tensor | None) -> torch.Tensor:
    """The mean loss of the samples in ``active`` (None: all): the same sum and division either way, so
    a chunk whose samples all integrate gives the batch mean of a single attempt to the last bit."""
    if active is None:
        return loss.sum() / loss.shape[0]
    return torch.where(active, loss, 0.0).sum() / active.sum()


def solve_amd(flow: GradientFlow, x: torch.Tensor, z0: torch.Tensor, tau: float, options: AMDOptions,
              acceptance: str = "per_sample", record: bool = False, progress=None, check_every: int = 1,
              cuda_graph: bool = False) -> EncodeResult:
    """Integrate ``flow`` from ``z0`` for targets ``x`` with AMD; see the module docstring.

    ``progress``, if given, is called with the number of finished samples whenever it changes.
    ``check_every``: attempts between the host's checks for finished samples (1: every attempt).
    ``cuda_graph``: on CUDA, capture ``check_every`` attempts once as a CUDA graph and replay it.
    Neither changes any result. The settings are checked by :class:`gfe_viz.solvers.AMD`, the way
    :func:`gfe_viz.encode` calls this.
    """
    if cuda_graph and z0.device.type != "cuda":
        raise ValueError(f"cuda_graph=True needs x and the decoder on a CUDA device, got device {str(z0.device)!r}; "
                         f"use cuda_graph=False on the {z0.device.type.upper()}")
    if cuda_graph and record:
        raise ValueError("record=True copies every attempt to the host, which a CUDA graph cannot do: "
                         "use cuda_graph=False to record")
    opts, B, device, dtype = options, x.shape[0], z0.device, z0.dtype
    work = _WorkingSet(flow, x, z0, tau, opts, batch_mode=acceptance == "batch")

    def zeros(dtype_=torch.long):
        return torch.zeros(B, dtype=dtype_, device=device)

    # final values, written when a sample finishes
    out = {"state": work.state.clone(), "loss": zeros(dtype), "status": zeros(), "nfe": zeros(), "accepted": zeros(),
           "forced": zeros(), "t": zeros(dtype)}
    recorder = _Recorder(B, work.state, work.loss, flow) if record else None
    run_chunk = _GraphedChunks(work, check_every) if cuda_graph else _EagerChunks(work, recorder)

    attempt, n_finished = 0, 0
    with torch.no_grad():
        while True:
            n_done = int(work.done.sum())  # the host synchronisation, once per chunk
            # the eager loop drops finished samples, so every done one is new; a graph keeps them, frozen
            newly = n_done if not cuda_graph else n_done - n_finished
            if newly:
                _write_finished(out, work, attempt)
                n_finished += newly
                if not cuda_graph:
                    work.compact(~work.done)
                if progress is not None:
                    progress(n_finished)
                if n_finished == B:
                    break
            n = min(check_every, opts.max_attempts - attempt)
            run_chunk(n)
            attempt += n
            if attempt >= opts.max_attempts:
                work.done = torch.ones_like(work.done)

    nfe = out["nfe"]
    stats = SolverStats(nfe=nfe, accepted=out["accepted"], rejected=nfe - 1 - out["accepted"], t=out["t"],
                        forced=out["forced"])
    steps, trajectory = recorder.logs(nfe) if recorder is not None else (None, None)
    return EncodeResult(z=flow.position(out["state"]), loss=out["loss"], status=out["status"], stats=stats,
                        solver="amd", flow=flow, state=out["state"], steps=steps, trajectory=trajectory)


def _write_finished(out: dict, work: _WorkingSet, attempt: int) -> None:
    """Copy the final values of the working set's finished samples into ``out`` after ``attempt`` attempts;
    a sample that finished ``idle`` attempts before the end of its chunk was evaluated that many times less."""
    fin = work.done
    fin_idx = work.idx[fin]
    for name, value in (("state", work.state), ("loss", work.loss), ("status", work.status()),
                        ("accepted", work.n_accepted), ("forced", work.n_forced), ("t", work.t)):
        out[name][fin_idx] = value[fin]
    out["nfe"][fin_idx] = attempt + 1 - work.idle[fin]


class _EagerChunks:
    """Runs a chunk of attempts one kernel at a time. The chunk starts right after a check, when every
    sample in the working set integrates, so its first attempt needs no mask."""

    def __init__(self, work: _WorkingSet, recorder: _Recorder | None):
        self.work, self.recorder = work, recorder

    def __call__(self, n: int) -> None:
        for j in range(n):
            self.work.attempt(None if j == 0 else ~self.work.done, self.recorder)


class _GraphedChunks:
    """Runs chunks of ``attempts`` attempts as one CUDA graph, captured after the first chunk (run
    eagerly on a side stream, which warms autograd and cuBLAS up) on the working set's tensors as
    static buffers, and replayed for every later chunk. Finished samples stay in the working set,
    frozen by the mask; a shorter chunk (before ``max_attempts``) runs eagerly."""

    def __init__(self, work: _WorkingSet, attempts: int):
        self.work, self.attempts, self.graph = work, attempts, None

    def _masked(self, n: int) -> None:
        for _ in range(n):
            self.work.attempt(~self.work.done)

    def __call__(self, n: int) -> None:
        if n != self.attempts:
            self._masked(n)
        elif self.graph is None:
            self._warm_up_and_capture()
        else:
            self.graph.replay()

    def _warm_up_and_capture(self) -> None:
        work = self.work
        side = torch.cuda.Stream(device=work.xs.device)
        side.wait_stream(torch.cuda.current_stream(work.xs.device))
        with torch.cuda.stream(side):
            self._masked(self.attempts)
        torch.cuda.current_stream(work.xs.device).wait_stream(side)
        static = {name: getattr(work, name) for name in _PER_SAMPLE}
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):  # recorded, not run: the warm-up chunk was this call's chunk
            self._masked(self.attempts)
            for name, buffer in static.items():
                buffer.copy_(getattr(work, name))
        for name, buffer in static.items():
            setattr(work, name, buffer)
        self.graph = graph
