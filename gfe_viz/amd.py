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

The pieces: :class:`StepController` holds the step-size rules (the acceptance test, the forced
step, its time jump, the next dt) and :class:`ConvergenceWindow` the convergence test, both per
sample; the working set keeps the per-sample tensors of the samples still in play together, and
one attempt maps it to the next; with ``record=True`` each attempt's rows stay on the device as
they are and the (A, B) step log and trajectory are built from them once, at the end, and copied
to the host.

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
from dataclasses import asdict, dataclass, fields, replace

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

    def replace(self, **changes) -> AMDOptions:
        """A copy with some fields changed; unknown names raise TypeError."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise TypeError(
                f"unknown AMD option(s) {sorted(unknown)}; expected some of {[f.name for f in fields(self)]}"
            )
        return AMDOptions(**{**asdict(self), **changes})


#: The authors' MNIST / FashionMNIST configuration.
AMD_MNIST = AMDOptions(
    dt0=1.0,
    dt_max=10.0,
    shrink=0.5,
    grow=1.1,
    sigma=1e-5,
    max_shrinks=20,
    conv_tol=1e-5,
    conv_after=0.02,
    fail_jump=10.0,
)


def mean_gradient_weights(like: torch.Tensor) -> torch.Tensor:
    """The (5,) weights w with ``history @ w == numpy.gradient(history).mean()`` for each row of a
    (n, 5) history, so the convergence test never leaves the device; on ``like``'s device and
    dtype, made once per solve (building a tensor costs as much as an op)."""
    return like.new_tensor(_MEAN_GRADIENT_WEIGHTS)


@dataclass(frozen=True)
class StepController:
    """AMD's step-size rules per sample: the acceptance test, the forced step at the dt floor, its
    time jump and the next dt. Made from an :class:`AMDOptions` by :meth:`from_options`."""

    dt0: float
    dt_max: float
    shrink: float
    grow: float
    sigma: float
    floor: float  #: ``shrink ** max_shrinks``: a rejection that shrinks dt below it forces the next attempt
    fail_jump: float
    stop_at_underflow: bool  #: a sample stops where its next attempt would be forced

    @classmethod
    def from_options(cls, options: AMDOptions) -> StepController:
        return cls(
            dt0=options.dt0,
            dt_max=options.dt_max,
            shrink=options.shrink,
            grow=options.grow,
            sigma=options.sigma,
            floor=options.dt_floor,
            fail_jump=options.fail_jump,
            stop_at_underflow=options.stop_at_underflow,
        )

    def accepts(
        self, loss0: torch.Tensor, loss1: torch.Tensor, dt: torch.Tensor, force_sq1: torch.Tensor
    ) -> torch.Tensor:
        """The sufficient-decrease test l(z0) - l(z1) >= sigma * dt_max * dt * ||f(z1)||^2.

        ``force_sq1`` is the squared force at the candidate z1 (not at z0, as the textbook Armijo rule has it).
        """
        return (loss0 - loss1) >= (self.sigma * self.dt_max) * dt * force_sq1

    def takes(self, passed: torch.Tensor, forced: torch.Tensor, finite: torch.Tensor) -> torch.Tensor:
        """Whether the step is taken: it passed the test or is forced, and its loss and force are finite."""
        return (passed | forced) & finite

    def advance(
        self, t: torch.Tensor, t1: torch.Tensor, taken: torch.Tensor, forced: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The time after the attempt (``t1`` = t + dt where the step is taken, and ``fail_jump`` more
        after a forced step), and where it jumped."""
        jumped = taken & forced
        return torch.where(taken, t1, t).add(jumped, alpha=self.fail_jump), jumped

    def next(self, dt: torch.Tensor, taken: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The next dt, and whether the next attempt is forced (taken whatever its loss).

        After a taken step dt = min(max(dt0, grow * dt), dt_max); after a rejection dt *= shrink,
        and the next attempt is forced once the shrunk dt is below the floor.
        """
        shrunk = dt * self.shrink
        grown = (dt * self.grow).clamp(self.dt0, self.dt_max)
        return torch.where(taken, grown, shrunk), ~taken & (shrunk < self.floor)


@dataclass(frozen=True)
class ConvergenceWindow:
    """AMD's convergence test per sample: the last CONV_WINDOW losses recorded, oldest first, each
    on a step taken at t >= ``start`` (conv_after * tau); converged when the window is full and
    |mean(numpy.gradient(losses))| < ``tol``. A slot not yet recorded holds NaN, which fails the
    test, so the window needs no count. Indexing keeps some samples' rows."""

    losses: torch.Tensor  #: (n, CONV_WINDOW)
    start: float
    tol: float
    weights: torch.Tensor  #: (CONV_WINDOW,), from :func:`mean_gradient_weights`

    @classmethod
    def empty(cls, n: int, like: torch.Tensor, options: AMDOptions, tau: float) -> ConvergenceWindow:
        """A window of ``n`` samples with nothing recorded, on ``like``'s device and dtype."""
        losses = torch.full((n, CONV_WINDOW), math.nan, dtype=like.dtype, device=like.device)
        return cls(losses, options.conv_after * tau, options.conv_tol, mean_gradient_weights(losses))

    def push(self, t: torch.Tensor, taken: torch.Tensor, loss: torch.Tensor) -> ConvergenceWindow:
        """The window after an attempt that ended at ``t`` with ``loss`` (n,).

        The loss is recorded where ``taken`` and t >= start."""
        record = (taken & (t >= self.start)).unsqueeze(1)
        shifted = torch.cat([self.losses[:, 1:], loss.unsqueeze(1)], 1)
        return ConvergenceWindow(torch.where(record, shifted, self.losses), self.start, self.tol, self.weights)

    def converged(self) -> torch.Tensor:
        return (self.losses @ self.weights).abs() < self.tol

    def __getitem__(self, keep: torch.Tensor) -> ConvergenceWindow:
        return ConvergenceWindow(self.losses[keep], self.start, self.tol, self.weights)

    def copy_(self, other: ConvergenceWindow) -> None:
        self.losses.copy_(other.losses)


@dataclass(frozen=True)
class _Samples:
    """The samples of a solve that are still in play, one row each: every field but the window is a
    tensor of one row per sample, so :meth:`select` keeps some samples and :meth:`copy_` fills
    static buffers (the CUDA graph's)."""

    idx: torch.Tensor  #: each row's sample in the batch
    xs: torch.Tensor  #: the targets
    state: torch.Tensor
    loss: torch.Tensor
    grad: torch.Tensor
    t: torch.Tensor
    dt: torch.Tensor
    forced: torch.Tensor  #: the next attempt is forced
    jumped: torch.Tensor  #: the last attempt was a forced step (which a sample that reached tau ended on)
    nonfinite: torch.Tensor  #: stopped where not even a forced step gave a finite loss (or at z0)
    converged: torch.Tensor
    done: torch.Tensor
    accepted: torch.Tensor  #: steps taken, forced ones included
    jumps: torch.Tensor  #: forced steps taken
    idle: torch.Tensor  #: attempts of the current chunk after the sample finished
    window: ConvergenceWindow

    def select(self, keep: torch.Tensor) -> _Samples:
        return _Samples(*(getattr(self, f.name)[keep] for f in fields(self)))

    def copy_(self, other: _Samples) -> None:
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if mine is not theirs:
                mine.copy_(theirs)

    def write(self, into: _Outcome, rows: torch.Tensor, status: torch.Tensor, nfe: torch.Tensor) -> None:
        """Copy the final values of the samples in ``rows`` into ``into``, with their ``status`` and ``nfe``."""
        idx = self.idx[rows]
        into.state[idx], into.loss[idx], into.t[idx] = self.state[rows], self.loss[rows], self.t[rows]
        into.accepted[idx], into.forced[idx] = self.accepted[rows], self.jumps[rows]
        into.status[idx], into.nfe[idx] = status[rows], nfe[rows]


@dataclass(frozen=True)
class _Outcome:
    """Every sample's final values, written as it finishes."""

    state: torch.Tensor
    loss: torch.Tensor
    t: torch.Tensor
    accepted: torch.Tensor
    forced: torch.Tensor
    status: torch.Tensor
    nfe: torch.Tensor

    @classmethod
    def empty(cls, start: _Samples) -> _Outcome:
        counts = [torch.zeros_like(start.idx) for _ in range(4)]
        return cls(start.state.clone(), torch.zeros_like(start.t), torch.zeros_like(start.t), *counts)

    def result(self, flow: GradientFlow, steps: StepLog | None, trajectory: Trajectory | None) -> EncodeResult:
        stats = SolverStats(
            nfe=self.nfe, accepted=self.accepted, rejected=self.nfe - 1 - self.accepted, t=self.t, forced=self.forced
        )
        return EncodeResult(
            z=flow.position(self.state),
            loss=self.loss,
            status=self.status,
            stats=stats,
            solver="amd",
            flow=flow,
            state=self.state,
            steps=steps,
            trajectory=trajectory,
        )


def _frozen(active: torch.Tensor | None, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """``new`` for the samples still integrating, ``old`` for the finished ones (``active`` None: all integrate)."""
    if active is None:
        return new
    return torch.where(active.unsqueeze(1) if new.dim() == 2 else active, new, old)


def _batch_mean(loss: torch.Tensor, active: torch.Tensor | None) -> torch.Tensor:
    """The mean loss of the samples in ``active`` (None: all): the same sum and division either way, so
    a chunk whose samples all integrate gives the batch mean of a single attempt to the last bit."""
    if active is None:
        return loss.sum() / loss.shape[0]
    return torch.where(active, loss, 0.0).sum() / active.sum()


class _WorkingSet:
    """One AMD solve's rules and its :class:`_Samples`, and one attempt of the solver on them.

    :meth:`attempt` with ``active`` None updates every row; with an ``active`` mask the other rows
    (samples that finished earlier in the chunk) keep every value they had, and their ``idle``
    count grows by one, so a chunk of attempts gives the results of single attempts.
    """

    def __init__(
        self, flow: GradientFlow, x: torch.Tensor, z0: torch.Tensor, tau: float, options: AMDOptions, batch_mode: bool
    ):
        self.flow, self.tau, self.batch_mode = flow, tau, batch_mode
        self.control = StepController.from_options(options)
        B, device, dtype = x.shape[0], z0.device, z0.dtype
        state = flow.initial_state(z0)
        loss, grad = flow.loss_and_grad(flow.position(state), x)
        nonfinite = ~torch.isfinite(loss + grad.square().sum(1))
        no = torch.zeros(B, dtype=torch.bool, device=device)
        count = torch.zeros(B, dtype=torch.long, device=device)
        self.samples = _Samples(
            idx=torch.arange(B, device=device),
            xs=x,
            state=state,
            loss=loss,
            grad=grad,
            t=torch.zeros(B, dtype=dtype, device=device),
            dt=torch.full((B,), options.dt0, dtype=dtype, device=device),
            forced=no,
            jumped=no,
            nonfinite=nonfinite,
            converged=no,
            done=nonfinite,
            accepted=count,
            jumps=count,
            idle=count,
            window=ConvergenceWindow.empty(B, z0, options, tau),
        )

    def status(self) -> torch.Tensor:
        """Each sample's :class:`Status`, meaningful for the finished ones: the first stopping rule that holds."""
        s = self.samples
        status = torch.where(
            s.t < self.tau,
            int(Status.STEP_LIMIT),
            torch.where(s.jumped, int(Status.STEP_UNDERFLOW), int(Status.REACHED_TAU)),
        )
        if self.control.stop_at_underflow:
            status = torch.where(s.forced, int(Status.STEP_UNDERFLOW), status)
        status = torch.where(s.converged, int(Status.CONVERGED), status)
        return torch.where(s.nonfinite, int(Status.NON_FINITE), status)

    def write_finished(self, into: _Outcome, attempts: int) -> None:
        """Write the finished samples into ``into`` after ``attempts`` attempts; a sample that finished
        ``idle`` attempts before the end of its chunk was evaluated that many times less."""
        s = self.samples
        s.write(into, s.done, self.status(), attempts + 1 - s.idle)

    def attempt(self, active: torch.Tensor | None = None, recorder: _Recorder | None = None) -> None:
        """One attempt for the samples in ``active`` (None: all of them); see the module docstring."""
        flow, control, s = self.flow, self.control, self.samples
        candidate = flow.euler_step(s.t, s.dt, s.state, s.grad)
        loss1, grad1 = flow.loss_and_grad(flow.position(candidate), s.xs)
        t1 = s.t + s.dt
        force_sq = flow.force_norm_sq(t1, grad1)
        finite = (loss1 + force_sq).abs() < math.inf  # torch.isfinite, in one op instead of four
        passed = control.accepts(s.loss, loss1, s.dt, force_sq)
        if self.batch_mode:
            passed = (passed if active is None else passed | ~active).all().expand_as(passed)
        taken = control.takes(passed, s.forced, finite)
        if active is not None:
            taken = taken & active
        t, jumped = control.advance(s.t, t1, taken, s.forced)
        dt, forced = control.next(s.dt, taken)
        forced = _frozen(active, forced, s.forced)
        loss = torch.where(taken, loss1, s.loss)
        window = s.window.push(t, taken, _batch_mean(loss, active).expand_as(loss) if self.batch_mode else loss)
        converged = window.converged()
        nonfinite = _frozen(active, s.forced & ~finite, s.nonfinite)
        done = nonfinite | converged | (t >= self.tau)
        if control.stop_at_underflow:
            done = done | forced
        self.samples = _Samples(
            idx=s.idx,
            xs=s.xs,
            state=_frozen(active, flow.keep_or_restart(s.state, candidate, taken), s.state),
            loss=loss,
            grad=torch.where(taken.unsqueeze(1), grad1, s.grad),
            t=t,
            dt=_frozen(active, dt, s.dt),
            forced=forced,
            jumped=_frozen(active, jumped, s.jumped),
            nonfinite=nonfinite,
            converged=converged,
            done=done,
            accepted=s.accepted + taken,
            jumps=s.jumps + jumped,
            idle=s.idle if active is None else s.idle + ~active,
            window=window,
        )
        if recorder is not None:
            recorder.add(s, self.samples, taken, loss1, active)


class _Recorder:
    """Every attempt of a solve: each attempt's working-set rows and their batch indices are kept as
    they are, on the solve's device (the attempt makes new tensors, so nothing is copied), and
    :meth:`logs` builds the full (A, B) step log and trajectory from them once, then copies them to
    the host."""

    def __init__(self, flow: GradientFlow, start: _Samples):
        self.flow, self.start, self.attempts = flow, start, []

    def add(
        self, before: _Samples, after: _Samples, taken: torch.Tensor, loss1: torch.Tensor, active: torch.Tensor | None
    ) -> None:
        """One attempt from ``before`` to ``after``, with ``loss1`` at its candidate; with ``active``, of
        its rows in the mask."""
        self.attempts.append((before.idx, active, before.t, before.dt, taken, loss1, after.state, after.t, after.loss))

    def logs(self, nfe: torch.Tensor) -> tuple[StepLog, Trajectory]:
        """The step log and the trajectory on the host. An attempt in which every sample had
        finished (inside a chunk) has no row; ``nfe`` (B,), each sample's final count, caps the
        evaluations per trajectory row (attempt k has cost k + 1, the first evaluation at z0 included)."""
        start, device = self.start, self.start.idx.device
        B, z0 = start.idx.shape[0], self.flow.position(start.state)
        dtype = z0.dtype
        idx, active, t, dt, taken, loss1, state, t_after, loss_after = list(zip(*self.attempts)) or [()] * 9
        sizes = torch.tensor([len(i) for i in idx], dtype=torch.long, device=device)
        keep = torch.cat(
            [torch.ones_like(i, dtype=torch.bool) if a is None else a for i, a in zip(idx, active)] + [start.done[:0]]
        )

        def entries(parts: tuple, like: torch.Tensor) -> torch.Tensor:  # of the active rows, attempt by attempt
            return torch.cat([*parts, like[:0]])[keep]

        attempt, sample = (
            torch.repeat_interleave(torch.arange(len(idx), device=device), sizes)[keep],
            entries(idx, start.idx),
        )
        used = torch.zeros(len(idx), dtype=torch.bool, device=device).index_fill_(0, attempt, True)
        row = (used.cumsum(0) - 1)[attempt]  # each entry's row in the step log
        A = int(used.sum())

        def logged(values: torch.Tensor, fill, dtype_: torch.dtype) -> torch.Tensor:
            out = torch.full((A, B), fill, dtype=dtype_, device=device)
            out[row, sample] = values.to(dtype_)
            return out

        steps = StepLog(
            t=logged(entries(t, start.t), math.nan, dtype),
            dt=logged(entries(dt, start.dt), 0.0, dtype),
            accepted=logged(entries(taken, keep), False, torch.bool),
            loss=logged(entries(loss1, start.loss), math.nan, dtype),
            active=logged(torch.ones_like(sample, dtype=torch.bool), False, torch.bool),
        )

        # trajectory row r + 1 is written where the step log's row r is active; the others repeat the row above
        written = torch.zeros(A + 1, B, dtype=torch.bool, device=device)
        written[0] = True
        written[row + 1, sample] = True
        last = torch.where(written, torch.arange(A + 1, device=device).unsqueeze(1), 0).cummax(0).values
        columns = torch.arange(B, device=device)

        def carried(first: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
            out = torch.empty((A + 1, *first.shape), dtype=dtype, device=device)
            out[0] = first
            out[row + 1, sample] = values.to(dtype)
            return out[last, columns]

        trajectory = Trajectory(
            t=carried(torch.zeros_like(start.t), entries(t_after, start.t)),
            z=carried(z0, self.flow.position(entries(state, start.state))),
            accepted=torch.cat([torch.ones_like(written[:1]), steps.accepted]),
            loss=carried(start.loss, entries(loss_after, start.loss)),
            nfe=torch.minimum(torch.arange(1, A + 2, device=device).unsqueeze(1), nfe.unsqueeze(0)),
        )
        return (
            StepLog(**{f.name: getattr(steps, f.name).cpu() for f in fields(steps)}),
            Trajectory(**{f.name: getattr(trajectory, f.name).cpu() for f in fields(trajectory)}),
        )


def solve_amd(
    flow: GradientFlow,
    x: torch.Tensor,
    z0: torch.Tensor,
    tau: float,
    options: AMDOptions,
    acceptance: str = "per_sample",
    record: bool = False,
    progress=None,
    check_every: int = 1,
    cuda_graph: bool = False,
) -> EncodeResult:
    """Integrate ``flow`` from ``z0`` for targets ``x`` with AMD; see the module docstring.

    ``progress``, if given, is called with the number of finished samples whenever it changes.
    ``check_every``: attempts between the host's checks for finished samples (1: every attempt).
    ``cuda_graph``: on CUDA, capture ``check_every`` attempts once as a CUDA graph and replay it.
    Neither changes any result. The settings are checked by :class:`gfe_viz.solvers.AMD`, the way
    :func:`gfe_viz.encode` calls this.
    """
    if cuda_graph and z0.device.type != "cuda":
        raise ValueError(
            f"cuda_graph=True needs x and the decoder on a CUDA device, got device {str(z0.device)!r}; "
            f"use cuda_graph=False on the {z0.device.type.upper()}"
        )
    if cuda_graph and record:
        raise ValueError(
            "record=True keeps every attempt's tensors, which a CUDA graph overwrites: use cuda_graph=False to record"
        )
    B = x.shape[0]
    work = _WorkingSet(flow, x, z0, tau, options, batch_mode=acceptance == "batch")
    out = _Outcome.empty(work.samples)
    recorder = _Recorder(flow, work.samples) if record else None
    run_chunk = _GraphedChunks(work, check_every) if cuda_graph else _EagerChunks(work, recorder)

    attempt, n_finished = 0, 0
    with torch.no_grad():
        while True:
            n_done = int(work.samples.done.sum())  # the host synchronisation, once per chunk
            # the eager loop drops finished samples, so every done one is new; a graph keeps them, frozen
            newly = n_done if not cuda_graph else n_done - n_finished
            if newly:
                work.write_finished(out, attempt)
                n_finished += newly
                if not cuda_graph:
                    work.samples = work.samples.select(~work.samples.done)
                if progress is not None:
                    progress(n_finished)
                if n_finished == B:
                    break
            n = min(check_every, options.max_attempts - attempt)
            run_chunk(n)
            attempt += n
            if attempt >= options.max_attempts:
                work.samples = replace(work.samples, done=torch.ones_like(work.samples.done))

    steps, trajectory = recorder.logs(out.nfe) if recorder is not None else (None, None)
    return out.result(flow, steps, trajectory)


class _EagerChunks:
    """Runs a chunk of attempts one kernel at a time. The chunk starts right after a check, when every
    sample in the working set integrates, so its first attempt needs no mask."""

    def __init__(self, work: _WorkingSet, recorder: _Recorder | None):
        self.work, self.recorder = work, recorder

    def __call__(self, n: int) -> None:
        for j in range(n):
            self.work.attempt(None if j == 0 else ~self.work.samples.done, self.recorder)


class _GraphedChunks:
    """Runs chunks of ``attempts`` attempts as one CUDA graph, captured after the first chunk (run
    eagerly on a side stream, which warms autograd and cuBLAS up) on the working set's tensors as
    static buffers, and replayed for every later chunk. Finished samples stay in the working set,
    frozen by the mask; a shorter chunk (before ``max_attempts``) runs eagerly."""

    def __init__(self, work: _WorkingSet, attempts: int):
        self.work, self.attempts, self.graph = work, attempts, None

    def _masked(self, n: int) -> None:
        for _ in range(n):
            self.work.attempt(~self.work.samples.done)

    def __call__(self, n: int) -> None:
        if n != self.attempts:
            self._masked(n)
        elif self.graph is None:
            self._warm_up_and_capture()
        else:
            self.graph.replay()

    def _warm_up_and_capture(self) -> None:
        work = self.work
        device = work.samples.xs.device
        side = torch.cuda.Stream(device=device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            self._masked(self.attempts)
        torch.cuda.current_stream(device).wait_stream(side)
        static = work.samples
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):  # recorded, not run: the warm-up chunk was this call's chunk
            self._masked(self.attempts)
            static.copy_(work.samples)
        work.samples = static
        self.graph = graph
