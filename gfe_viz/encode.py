"""``encode``: the one entry point that finds latents by integrating a gradient flow."""

from __future__ import annotations

import torch
from torch import nn

from ._checks import check_choice, check_positive, check_tensor
from .amd import AMDOptions
from .flows import GradientFlow
from .losses import LossFn
from .solution import EncodeResult
from .solvers import SOLVER_CLASSES, Solver, solver_from_name

SOLVERS = tuple(SOLVER_CLASSES)  #: the names of the string form
Z0_CHOICES = ("zeros", "uniform")


def encode(
    decoder: nn.Module,
    x: torch.Tensor,
    solver: str | Solver = "amd",
    order: int = 1,
    acceptance: str = "per_sample",
    loss: str | LossFn = "bce",
    z0: str | torch.Tensor = "zeros",
    tau: float = 1e4,
    record: bool = False,
    *,
    alpha: float = 1.0,
    alpha_schedule: str = "constant",
    amd: AMDOptions | None = None,
    latent_dim: int | None = None,
    generator: torch.Generator | None = None,
    progress=None,
    gradient: str = "autograd",
    check_every: int = 1,
    cuda_graph: bool = False,
    **options,
) -> EncodeResult:
    """Find each sample's latent z* by integrating the gradient flow of l(x, D(z)) from z0 to tau.

    Arguments:
        decoder: a module mapping (B, d) latents to (B, ...) outputs with x's per-sample size.
        x: (B, ...) targets; the solve follows x's dtype and device.
        solver: a solver object (:mod:`gfe_viz.solvers`: ``AMD(AMD_MNIST)``, ``Euler(dt=0.5)``,
            ``RK4(dt=...)``, ``Dopri5(rtol=..., atol=...)``), which carries all of its settings, or
            its name as a shorthand: ``"amd"`` (default, with ``acceptance``, ``amd``,
            ``check_every``, ``cuda_graph`` and AMD fields in ``options``), or torchdiffeq's
            ``"euler"``, ``"rk4"`` (fixed step ``dt``), ``"dopri5"`` (``rtol``, ``atol``,
            ``max_num_steps``: attempted steps before it stops as ``step_limit``, default 10,000).
        order: 1 for the gradient flow, 2 for the Nesterov-like flow.
        acceptance: string form of AMD only: ``"per_sample"`` or ``"batch"`` (the reference's behaviour).
        loss: ``"bce"`` (decoder gives logits), ``"mse"``, or a callable (output, target) -> (B,).
        z0: ``"zeros"``, ``"uniform"`` (U[0,1), drawn with ``generator``) or a (B, d) tensor.
        tau: integration horizon, > 0.
        record: keep every attempted step (``.steps``) and the trajectory (``.trajectory``).
        alpha, alpha_schedule: alpha(t) = alpha (``"constant"``) or alpha * exp(-2t/tau) (``"exponential"``).
        amd: string form of AMD only: an :class:`AMDOptions` preset (e.g. ``AMD_MNIST``); keyword
            ``options`` override its fields.
        latent_dim: needed only when z0 is a name and the decoder has no ``latent_dim`` attribute
            and does not start with an ``nn.Linear``.
        progress: AMD only: a callable receiving the number of finished samples.
        gradient: ``"autograd"``, ``"fused"`` (hand-written loss and latent gradient for an MLP
            decoder with the BCE or MSE loss, about a third cheaper per evaluation at small batch)
            or ``"auto"`` (fused where it applies); see :class:`GradientFlow`.
        check_every: string form of AMD only: attempts between the host's checks for finished
            samples (1: after every attempt); larger values wait less on a GPU and give the same results.
        cuda_graph: string form of AMD only, on CUDA: capture ``check_every`` attempts once as a
            CUDA graph and replay it (see :mod:`gfe_viz.amd`).
        **options: string form only: AMD fields (dt0, dt_max, shrink, grow, sigma, max_shrinks,
            conv_tol, conv_after, fail_jump, max_attempts) or the classical solvers' dt, rtol, atol,
            n_save, max_num_steps.

    Returns:
        An :class:`EncodeResult` with ``z``, ``loss``, ``status``, ``stats``, the ``flow`` it
        integrated and, when recorded, ``steps`` and ``trajectory``.
    """
    if isinstance(solver, Solver):
        _check_no_string_form_settings(
            solver, acceptance=acceptance, amd=amd, check_every=check_every, cuda_graph=cuda_graph, **options
        )
    else:
        solver = solver_from_name(
            solver, acceptance=acceptance, amd=amd, check_every=check_every, cuda_graph=cuda_graph, **options
        )
    check_positive("tau", tau)
    x = check_tensor("x", x)
    flow = GradientFlow(
        decoder, loss=loss, order=order, alpha=alpha, alpha_schedule=alpha_schedule, tau=tau, gradient=gradient
    )
    start = initial_latents(z0, x, _latent_dim(decoder, latent_dim), generator)
    _check_dtypes(decoder, x)
    return solver.solve(flow, x, start, tau, record=record, progress=progress)


def _check_no_string_form_settings(solver: Solver, **given) -> None:
    """A solver object carries its own settings: refuse the string form's ones next to it."""
    defaults = {"acceptance": "per_sample", "amd": None, "check_every": 1, "cuda_graph": False}
    extra = {name: value for name, value in given.items() if name not in defaults or value != defaults[name]}
    if extra:
        listed = ", ".join(f"{name}={value!r}" for name, value in extra.items())
        raise TypeError(
            f"solver={solver!r} carries its own settings, got {listed} besides it: "
            f"set them on the solver object (e.g. dataclasses.replace(solver, ...))"
        )


def initial_latents(
    z0: str | torch.Tensor, x: torch.Tensor, latent_dim: int | None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """z0 as a (B, d) tensor with x's dtype and device: zeros, U[0,1) or a given tensor (checked)."""
    if isinstance(z0, torch.Tensor):
        z0 = check_tensor("z0", z0, min_dim=2)
        if z0.dim() != 2 or z0.shape[0] != x.shape[0] or (latent_dim is not None and z0.shape[1] != latent_dim):
            expected = f"({x.shape[0]}, {latent_dim if latent_dim is not None else 'd'})"
            raise ValueError(f"z0 must have shape {expected}, got {tuple(z0.shape)}")
        return z0.to(dtype=x.dtype, device=x.device)
    check_choice("z0", z0, Z0_CHOICES)
    if latent_dim is None:
        raise ValueError("latent_dim could not be inferred from the decoder: pass latent_dim=... or a z0 tensor")
    if z0 == "zeros":
        return torch.zeros(x.shape[0], latent_dim, dtype=x.dtype, device=x.device)
    device = generator.device if generator is not None else x.device
    return torch.rand(x.shape[0], latent_dim, generator=generator, dtype=x.dtype, device=device).to(x.device)


def _check_dtypes(decoder: nn.Module, x: torch.Tensor) -> None:
    param = next((p for p in decoder.parameters() if p.is_floating_point()), None)
    if param is not None and param.dtype != x.dtype:
        raise ValueError(
            f"x has dtype {x.dtype} but the decoder's parameters are {param.dtype}: "
            f"convert one of them (e.g. decoder.double() or x.float())"
        )


def _latent_dim(decoder: nn.Module, latent_dim: int | None) -> int | None:
    if latent_dim is not None:
        return latent_dim
    if hasattr(decoder, "latent_dim"):
        return int(decoder.latent_dim)
    first = next((m for m in decoder.modules() if isinstance(m, nn.Linear)), None)
    return first.in_features if first is not None else None
