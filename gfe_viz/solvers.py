"""Solver objects: the method that integrates a flow, with its settings checked once and its own NFE accounting.

The flow (decoder, loss, order, alpha schedule, gradient) is the problem and the solver object
the method, as in diffrax's ``diffeqsolve(terms, solver, ...)``::

    encode(decoder, x, solver=AMD(AMD_MNIST, acceptance="batch"))
    encode(decoder, x, solver=Euler(dt=0.5), order=2)
    encode(decoder, x, solver=Dopri5(rtol=1e-5, atol=1e-7))

Each object is a frozen dataclass whose ``__post_init__`` refuses a bad setting with its name, its
value and what is expected. The string forms of :func:`gfe_viz.encode` (``solver="amd"`` with
``acceptance=``, ``amd=`` and AMD fields, ``solver="euler"`` with ``dt=``, ...) are shorthands
that :func:`solver_from_name` turns into the same objects.

A solver also knows what its decoder evaluations bought: :meth:`nfe_at` gives the evaluations
spent to produce the state saved at each time of a classical solve (euler 1 and rk4 4 per step,
dopri5 2 before its first step and 6 per attempted step), which a recorded result carries as
``trajectory.nfe``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, ClassVar

import torch

from ._checks import check_choice, check_positive, check_positive_int
from .amd import ACCEPTANCE_MODES, AMDOptions, solve_amd
from .classical import MAX_NUM_STEPS, solve_classical

if TYPE_CHECKING:
    from .flows import GradientFlow
    from .solution import EncodeResult


class Solver:
    """A method that integrates a :class:`~gfe_viz.flows.GradientFlow` from z0 up to tau."""

    name: ClassVar[str]  #: the name of the string form, also ``EncodeResult.solver``

    def solve(
        self, flow: GradientFlow, x: torch.Tensor, z0: torch.Tensor, tau: float, record: bool = False, progress=None
    ) -> EncodeResult:
        """Integrate ``flow`` for targets ``x`` from latents ``z0`` (B, d) up to ``tau``."""
        raise NotImplementedError


@dataclass(frozen=True)
class AMD(Solver):
    """AMD (:mod:`gfe_viz.amd`): Euler steps accepted only where the loss drops enough.

    ``check_every`` and ``cuda_graph`` say how the loop runs, not what it computes (see
    :func:`~gfe_viz.amd.solve_amd`).
    """

    options: AMDOptions = AMDOptions()
    acceptance: str = "per_sample"  #: ``"per_sample"`` or ``"batch"`` (the reference's rules)
    check_every: int = 1
    cuda_graph: bool = False
    name: ClassVar[str] = "amd"

    def __post_init__(self):
        if not isinstance(self.options, AMDOptions):
            raise TypeError(f"options must be an AMDOptions (e.g. gfe_viz.AMD_MNIST), got {self.options!r}")
        check_choice("acceptance", self.acceptance, ACCEPTANCE_MODES)
        check_positive_int("check_every", self.check_every)
        if not isinstance(self.cuda_graph, bool):
            raise ValueError(f"cuda_graph must be True or False, got {self.cuda_graph!r}")

    def solve(self, flow, x, z0, tau, record=False, progress=None):
        return solve_amd(
            flow,
            x,
            z0,
            tau,
            self.options,
            acceptance=self.acceptance,
            record=record,
            progress=progress,
            check_every=self.check_every,
            cuda_graph=self.cuda_graph,
        )


def _check_n_save(n_save: int) -> None:
    if isinstance(n_save, bool) or not isinstance(n_save, int) or n_save < 2:
        raise ValueError(f"n_save must be an integer >= 2, got {n_save!r}")


@dataclass(frozen=True)
class FixedStep(Solver):
    """A fixed-step torchdiffeq method with step ``dt``, the state saved at ``n_save`` evenly spaced times."""

    dt: float = 1.0
    n_save: int = 101
    adaptive: ClassVar[bool] = False
    evaluations_per_step: ClassVar[int]

    def __post_init__(self):
        check_positive("dt", self.dt)
        _check_n_save(self.n_save)

    def solve(self, flow, x, z0, tau, record=False, progress=None):
        return solve_classical(flow, x, z0, tau, self, record=record)

    def nfe_at(self, times: torch.Tensor, step_log: list, total: int) -> torch.Tensor:
        """Evaluations (the final loss evaluation included) spent to produce the state saved at each
        of ``times`` (float64): ``evaluations_per_step`` for every step of ``dt`` up to it."""
        n_steps = torch.ceil(times / self.dt - 1e-9).clamp(min=0)
        return 1 + self.evaluations_per_step * n_steps


class Euler(FixedStep):
    """Explicit Euler with step ``dt``: one decoder evaluation per step."""

    name = "euler"
    evaluations_per_step = 1


class RK4(FixedStep):
    """The classical Runge-Kutta method with step ``dt``: four decoder evaluations per step."""

    name = "rk4"
    evaluations_per_step = 4


@dataclass(frozen=True)
class Dopri5(Solver):
    """Dormand-Prince 5(4) with tolerances ``rtol``, ``atol``, stopped as ``step_limit`` after
    ``max_num_steps`` attempted steps (see :mod:`gfe_viz.classical`)."""

    rtol: float = 1e-6
    atol: float = 1e-8
    max_num_steps: int = MAX_NUM_STEPS
    n_save: int = 101
    name: ClassVar[str] = "dopri5"
    adaptive: ClassVar[bool] = True
    evaluations_before_first_step: ClassVar[int] = 2  #: torchdiffeq's choice of the first step
    evaluations_per_attempt: ClassVar[int] = 6  #: six new stages per step (the seventh is the next step's first)

    def __post_init__(self):
        check_positive("rtol", self.rtol)
        check_positive("atol", self.atol)
        check_positive_int("max_num_steps", self.max_num_steps)
        _check_n_save(self.n_save)

    def solve(self, flow, x, z0, tau, record=False, progress=None):
        return solve_classical(flow, x, z0, tau, self, record=record)

    def nfe_at(self, times: torch.Tensor, step_log: list, total: int) -> torch.Tensor:
        """Evaluations (the final loss evaluation included) spent to produce the state saved at each
        of ``times`` (float64): the attempts up to the first accepted step that reaches it, from the
        step log of (t, dt, accepted); ``total`` everywhere when no step was attempted."""
        if not step_log:
            return torch.full_like(times, float(total))
        log = torch.tensor(step_log, dtype=torch.float64)
        ends, accepted = log[:, 0] + log[:, 1], log[:, 2].bool()
        done = []
        for time in times.tolist():
            hit = torch.nonzero(accepted & (ends >= time - 1e-9)).flatten()
            attempts = int(hit[0]) + 1 if time > 0 and hit.numel() else 0
            done.append(1 + self.evaluations_before_first_step + self.evaluations_per_attempt * attempts)
        return torch.tensor(done, dtype=torch.float64)


#: every solver by the name of its string form
SOLVER_CLASSES: dict[str, type[Solver]] = {cls.name: cls for cls in (AMD, Euler, RK4, Dopri5)}
#: the names of the fixed-step solvers (those that take a step ``dt``)
FIXED_STEP = tuple(name for name, cls in SOLVER_CLASSES.items() if issubclass(cls, FixedStep))
_CLASSICAL = {name: cls for name, cls in SOLVER_CLASSES.items() if cls is not AMD}
_CLASSICAL_OPTIONS = tuple(dict.fromkeys(f.name for cls in _CLASSICAL.values() for f in fields(cls)))


def solver_from_name(
    name: str,
    acceptance: str = "per_sample",
    amd: AMDOptions | None = None,
    check_every: int = 1,
    cuda_graph: bool = False,
    **options,
) -> Solver:
    """The solver object of :func:`gfe_viz.encode`'s string form.

    ``"amd"``: :class:`AMD` with ``amd`` (default ``AMDOptions()``) whose fields ``options``
    override, ``acceptance``, ``check_every`` and ``cuda_graph``. ``"euler"``, ``"rk4"``,
    ``"dopri5"``: the class of that name with ``options`` as its fields; the AMD-only arguments
    must keep their defaults.
    """
    check_choice("solver", name, SOLVER_CLASSES)
    check_choice("acceptance", acceptance, ACCEPTANCE_MODES)
    if name == AMD.name:
        if amd is not None and not isinstance(amd, AMDOptions):
            raise TypeError(f"amd must be an AMDOptions (e.g. gfe_viz.AMD_MNIST) or None, got {amd!r}")
        return AMD((amd or AMDOptions()).replace(**options), acceptance, check_every, cuda_graph)
    if amd is not None or acceptance != "per_sample" or check_every != 1 or cuda_graph:
        raise ValueError(
            f"amd=, acceptance=, check_every= and cuda_graph= apply to solver='amd' only, got solver={name!r}"
        )
    unknown = set(options) - set(_CLASSICAL_OPTIONS)
    if unknown:
        raise TypeError(
            f"unknown option(s) {sorted(unknown)} for solver {name!r}; expected some of {list(_CLASSICAL_OPTIONS)}"
        )
    cls = SOLVER_CLASSES[name]
    for option in options:
        if option not in {f.name for f in fields(cls)}:
            owners = [other for other, c in _CLASSICAL.items() if option in {f.name for f in fields(c)}]
            raise TypeError(f"{option} applies to {owners} only, got solver={name!r}")
    return cls(**options)
