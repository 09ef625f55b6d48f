"""Runners for the truncation lesson's experiments E1 to E4; each returns plain arrays, no figures.

E1 solves the effective threshold ODE (exact and Euler); E2 trains a genuine ReLU network whose
cumulative weights are diagonal, on two separated clusters; E3 is the same network on clusters
that no threshold can separate; E4 trains ordinary narrow ReLU networks over many seeds and
classifies what made each run converge (or not). All training is full-batch plain gradient
descent in float64 on the CPU, with time t = learning rate x steps and cost (1/2N) sum |error|^2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .._checks import check_choice, check_positive, check_positive_int, check_tensor
from ..device import torch_threads
from .network import (
    CumulativeDiagonalReLUNet,
    cumulative_parameters,
    nc1,
    relu_forward,
    sequential_parameters,
    truncation_counts,
    within_class_variance,
)
from .threshold_ode import (
    RateSegments,
    SampledPath,
    ThresholdPath,
    euler_threshold_path,
    exact_threshold_path,
    seed_threshold,
    segment_rates,
)

COSTS = ("input", "output")
OUTCOMES = ("truncation-driven collapse", "rank-driven collapse", "stalled", "unclassified")


def gaussian_clusters(
    centres: Sequence[Sequence[float]], n_per_cluster: int = 50, spread: float = 0.3, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Points ``centre + spread * N(0, I)``, ``n_per_cluster`` per centre, in float64, with labels 0..K-1."""
    check_positive_int("n_per_cluster", n_per_cluster)
    check_positive("spread", spread)
    centres = torch.as_tensor(centres, dtype=torch.float64)
    if centres.dim() != 2:
        raise ValueError(f"centres must be a (K, Q) list of points, got shape {tuple(centres.shape)}")
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(len(centres), n_per_cluster, centres.shape[1], generator=generator, dtype=torch.float64)
    x = (centres.unsqueeze(1) + spread * noise).reshape(-1, centres.shape[1])
    labels = torch.arange(len(centres)).repeat_interleave(n_per_cluster)
    return x, labels


def _check_data(x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Points (N, Q) as float64 and integer labels 0..K-1 with K <= Q; returns the points and K."""
    check_tensor("x", x, min_dim=2)
    if x.dim() != 2:
        raise ValueError(f"x must have shape (N, Q), got {tuple(x.shape)}")
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.long or labels.shape != (len(x),):
        kind = getattr(labels, "dtype", type(labels).__name__)
        raise ValueError(
            f"labels must be an integer (torch.long) tensor of shape ({len(x)},), "
            f"got {kind} of shape {tuple(getattr(labels, 'shape', ()))}"
        )
    n_classes = int(labels.max()) + 1
    if int(labels.min()) < 0 or n_classes > x.shape[1]:
        raise ValueError(
            f"labels must lie in 0..Q-1 = 0..{x.shape[1] - 1} (one class per output coordinate), "
            f"got values from {int(labels.min())} to {n_classes - 1}"
        )
    return x.to(torch.float64), n_classes


# --- E1: the effective ODE ------------------------------------------------------------------------


@dataclass(frozen=True)
class ThresholdODERun:
    """E1: one cluster's coordinates, the exact solution, an Euler run and its measured rates."""

    points: np.ndarray
    target: float
    exact: ThresholdPath
    euler: SampledPath
    rates: RateSegments


def run_threshold_ode(
    n_points: int = 40,
    n_seed: int = 3,
    target: float = 1.0,
    step: float = 1e-3,
    t_end: float = 8.0,
    spread: float = 0.3,
    seed: int = 0,
) -> ThresholdODERun:
    """Solve d beta/dt = -(n/N)(beta - target) for ``n_points`` points ~ N(0, spread^2), max-type threshold.

    The threshold starts with ``n_seed`` points truncated. Rates are measured on the Euler run.
    """
    check_positive_int("n_points", n_points)
    points = spread * np.random.default_rng(seed).standard_normal(n_points)
    beta0 = seed_threshold(points, n_seed)
    exact = exact_threshold_path(points, target, beta0)
    euler = euler_threshold_path(points, target, beta0, step, t_end)
    rates = segment_rates(euler.times, np.abs(euler.beta - target), euler.counts)
    return ThresholdODERun(points=points, target=target, exact=exact, euler=euler, rates=rates)


# --- E2 and E3: a ReLU network with diagonal cumulative weights ------------------------------------


@dataclass(frozen=True)
class AlignedRun:
    """E2/E3: the history of a :class:`CumulativeDiagonalReLUNet` trained by gradient descent.

    Per recorded step (T of them): ``thresholds`` and cumulative weights ``d`` (T, L, Q), truncation
    ``counts`` (T, L, Q, K), pulled-back ``targets`` (T, K, Q), ``loss`` (T,), ``nc1`` and
    ``class_variance`` (T, K) of the input-space representation x~^(L). ``snapshots`` (F, N, Q) are
    x~^(L) at ``snapshot_times``. ``output_metric`` is diag(A^T A) when the cost is the output
    cost (it multiplies the rates), ones for the input-layer cost.
    """

    x: np.ndarray
    labels: np.ndarray
    cost: str
    times: np.ndarray
    thresholds: np.ndarray
    d: np.ndarray
    counts: np.ndarray
    targets: np.ndarray
    loss: np.ndarray
    nc1: np.ndarray
    class_variance: np.ndarray
    snapshot_times: np.ndarray
    snapshots: np.ndarray
    output_metric: np.ndarray


def train_aligned_network(
    x: torch.Tensor,
    labels: torch.Tensor,
    thresholds,
    signs,
    output_weight,
    output_bias,
    cost: str = "input",
    train_output: bool = False,
    step: float = 0.01,
    t_end: float = 30.0,
    n_snapshots: int = 31,
) -> AlignedRun:
    """Train a ReLU network with diagonal cumulative weights by full-batch gradient descent.

    Layer l starts with threshold ``thresholds[l]`` and type ``signs[l]`` (+1 max, -1 min), i.e.
    d_l = signs[l] and c_l = -d_l * thresholds[l]. The labels are one-hot; (``output_weight``,
    ``output_bias``) is the output layer's cumulative pair, which fixes the pulled-back targets.
    ``cost`` "input" is (1/2N) sum |x~^(L) - y~_j|^2, "output" is (1/2N) sum |network(x) - y_j|^2.
    """
    check_choice("cost", cost, COSTS)
    check_positive("step", step)
    check_positive("t_end", t_end)
    check_positive_int("n_snapshots", n_snapshots)
    x, n_classes = _check_data(x, labels)
    signs = torch.as_tensor(signs, dtype=torch.float64)
    if not bool((signs.abs() == 1).all()):
        raise ValueError(f"signs must contain only +1 (max-type) and -1 (min-type), got {signs.tolist()}")
    c0 = -signs * torch.as_tensor(thresholds, dtype=torch.float64)
    net = CumulativeDiagonalReLUNet(
        signs,
        c0,
        torch.as_tensor(output_weight, dtype=torch.float64),
        torch.as_tensor(output_bias, dtype=torch.float64),
        train_output=train_output,
    )
    class_targets = torch.eye(n_classes, x.shape[1], dtype=torch.float64)
    optimiser = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=step)
    n_steps = int(round(t_end / step))
    history = {key: [] for key in ("thresholds", "d", "targets", "loss", "input_space", "pre_activations")}
    with torch_threads(1):
        for i in range(n_steps + 1):
            optimiser.zero_grad()
            forward = net(x)
            input_space = net.input_space(forward.hidden[-1])
            targets = net.pulled_back_targets(class_targets)
            if cost == "input":
                loss = 0.5 * ((input_space - targets[labels]) ** 2).sum() / len(x)
            else:
                loss = 0.5 * ((forward.output - class_targets[labels]) ** 2).sum() / len(x)
            for key, value in (
                ("thresholds", net.thresholds()),
                ("d", net.d),
                ("targets", targets),
                ("loss", loss),
                ("input_space", input_space),
                ("pre_activations", torch.stack(forward.pre_activations)),
            ):
                history[key].append(value.detach().clone())
            if i < n_steps:
                loss.backward()
                optimiser.step()
        stacked = {key: torch.stack(values) for key, values in history.items()}
        input_spaces = stacked.pop("input_space")
        pre_activations = stacked.pop("pre_activations").unbind(1)
        arrays = {key: value.numpy() for key, value in stacked.items()}
        arrays["counts"] = truncation_counts(pre_activations, labels, n_classes).numpy()
        arrays["nc1"] = nc1(input_spaces, labels, n_classes).numpy()
        arrays["class_variance"] = within_class_variance(input_spaces, labels, n_classes).numpy()
    snapshot_steps = np.linspace(0, n_steps, n_snapshots).round().astype(int)
    metric = (net.output_weight.T @ net.output_weight).diagonal() if cost == "output" else torch.ones(x.shape[1])
    return AlignedRun(
        x=x.numpy(),
        labels=labels.numpy(),
        cost=cost,
        times=step * np.arange(n_steps + 1),
        snapshot_times=step * snapshot_steps,
        snapshots=input_spaces[snapshot_steps].numpy(),
        output_metric=metric.detach().numpy(),
        **arrays,
    )


def aligned_rate_segments(run: AlignedRun, layer: int, coordinate: int) -> RateSegments:
    """Measured rates of |beta - y~_j| for one threshold, divided by its predicted metric factor.

    j is the cluster this threshold truncates most at the end. Gradient descent on (d, c) moves
    beta at (n/N) (1 + beta^2) / d^2 times the output metric (1 for the input-layer cost), so the
    normalised rates should equal n/N (a reconstruction, checked here rather than assumed).
    """
    beta = run.thresholds[:, layer, coordinate]
    d = run.d[:, layer, coordinate]
    distance, total_counts = threshold_distance(run, layer, coordinate)
    metric = (1 + beta**2) / d**2 * run.output_metric[coordinate]
    return segment_rates(run.times, distance, total_counts, metric)


def threshold_distance(run: AlignedRun, layer: int, coordinate: int) -> tuple[np.ndarray, np.ndarray]:
    """|beta - y~_j| (T,) for one threshold and the cluster j it truncates most at the end, and the
    threshold's total truncation count (T,), whose jumps are the events."""
    cluster = int(run.counts[-1, layer, coordinate].argmax())
    distance = np.abs(run.thresholds[:, layer, coordinate] - run.targets[:, cluster, coordinate])
    return distance, run.counts[:, layer, coordinate].sum(-1)


def truncated_mean_target(run: AlignedRun, layer: int, coordinate: int) -> np.ndarray:
    """y-bar(t): the mean pulled-back target over the points truncated by one threshold (NaN when none).

    Without cluster separation the threshold relaxes towards this count-weighted mean, which jumps
    at every event.
    """
    counts = run.counts[:, layer, coordinate].astype(float)
    weighted = (counts * run.targets[:, :, coordinate]).sum(-1)
    total = counts.sum(-1)
    return np.where(total > 0, weighted / np.maximum(total, 1), np.nan)


# --- E4: ordinary narrow ReLU networks over many seeds ---------------------------------------------


@dataclass(frozen=True)
class ReLUNetRuns:
    """E4: S ordinary ReLU networks (one per seed) trained on the same data, recorded at T times.

    ``loss`` (T, S); ``counts`` (T, S, L, Q, K); ``condition`` (T, S, L): condition numbers of the
    cumulative weights W^(l).
    """

    seeds: np.ndarray
    times: np.ndarray
    loss: np.ndarray
    counts: np.ndarray
    condition: np.ndarray
    class_sizes: np.ndarray


def default_relu_network(depth: int, width: int, seed: int) -> torch.nn.Sequential:
    """``depth`` hidden ReLU layers of ``width`` and a linear output, PyTorch's default init, float64."""
    check_positive_int("depth", depth)
    check_positive_int("width", width)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers = []
        for _ in range(depth):
            layers += [torch.nn.Linear(width, width, dtype=torch.float64), torch.nn.ReLU()]
        return torch.nn.Sequential(*layers, torch.nn.Linear(width, width, dtype=torch.float64))


def train_relu_networks(
    x: torch.Tensor,
    labels: torch.Tensor,
    depth: int,
    seeds: Sequence[int],
    step: float = 0.05,
    t_end: float = 400.0,
    n_records: int = 201,
) -> ReLUNetRuns:
    """Train one :func:`default_relu_network` per seed, all at once, by full-batch gradient descent.

    The networks are stacked along a leading batch dimension; the summed cost gives each network
    exactly its own gradient, so every run is the run its ``nn.Sequential`` would have.
    """
    check_positive("step", step)
    check_positive("t_end", t_end)
    check_positive_int("n_records", n_records)
    if len(seeds) == 0:
        raise ValueError(f"seeds must be a non-empty list of integers, got {seeds!r}")
    x, n_classes = _check_data(x, labels)
    width = x.shape[1]
    per_seed = [sequential_parameters(default_relu_network(depth, width, seed)) for seed in seeds]
    weights = [torch.stack(layer).requires_grad_() for layer in zip(*(w for w, _ in per_seed))]
    biases = [torch.stack(layer).requires_grad_() for layer in zip(*(b for _, b in per_seed))]
    targets = torch.eye(n_classes, width, dtype=torch.float64)[labels]
    optimiser = torch.optim.SGD(weights + biases, lr=step)
    n_steps = int(round(t_end / step))
    record_steps = set(np.linspace(0, n_steps, n_records).round().astype(int).tolist())
    history = {key: [] for key in ("loss", "counts", "condition")}
    with torch_threads(1):
        for i in range(n_steps + 1):
            optimiser.zero_grad()
            forward = relu_forward(x, weights, biases)
            per_network = 0.5 * ((forward.output - targets) ** 2).sum((-1, -2)) / len(x)
            if i in record_steps:
                with torch.no_grad():
                    cumulative_weights, _ = cumulative_parameters(weights[:-1], biases[:-1])
                    history["loss"].append(per_network.clone())
                    history["counts"].append(truncation_counts(forward.pre_activations, labels, n_classes))
                    history["condition"].append(torch.stack([torch.linalg.cond(w) for w in cumulative_weights], -1))
            if i < n_steps:
                per_network.sum().backward()
                optimiser.step()
    arrays = {key: torch.stack(values).numpy() for key, values in history.items()}
    return ReLUNetRuns(
        seeds=np.array(list(seeds)),
        times=step * np.array(sorted(record_steps)),
        class_sizes=torch.bincount(labels, minlength=n_classes).numpy(),
        **arrays,
    )


def classify_runs(runs: ReLUNetRuns, loss_tolerance: float = 1e-4, condition_limit: float = 1e4) -> list[str]:
    """Name the outcome of each run, from its final state.

    "stalled": final loss above ``loss_tolerance``. Otherwise "rank-driven collapse" when some
    cumulative weight's condition number exceeds ``condition_limit``; "truncation-driven collapse"
    when instead some neuron truncates every point of some cluster; "unclassified" when neither.
    """
    check_positive("loss_tolerance", loss_tolerance)
    check_positive("condition_limit", condition_limit)
    outcomes = []
    for s in range(len(runs.seeds)):
        full_cluster = (runs.counts[-1, s] == runs.class_sizes).any()
        if runs.loss[-1, s] > loss_tolerance:
            outcomes.append("stalled")
        elif runs.condition[-1, s].max() > condition_limit:
            outcomes.append("rank-driven collapse")
        elif full_cluster:
            outcomes.append("truncation-driven collapse")
        else:
            outcomes.append("unclassified")
    return outcomes


def outcome_fractions(outcomes: Sequence[str]) -> dict[str, float]:
    """The fraction of runs with each outcome, every outcome listed (zero when absent)."""
    for outcome in outcomes:
        check_choice("outcome", outcome, OUTCOMES)
    return {name: sum(o == name for o in outcomes) / max(len(outcomes), 1) for name in OUTCOMES}


def loss_rate_segments(runs: ReLUNetRuns, index: int) -> RateSegments:
    """Decay rates of one run's loss, one per stretch of records with the same total truncation count.

    If the truncation picture carried over to ordinary networks, these rates would grow with the
    count, as the threshold rates do in E1 and E2.
    """
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(runs.seeds):
        raise ValueError(f"index must be an integer in [0, {len(runs.seeds) - 1}], got {index!r}")
    return segment_rates(runs.times, runs.loss[:, index], _total_counts(runs, index))


def _total_counts(runs: ReLUNetRuns, index: int) -> np.ndarray:
    """Run ``index``'s truncation count summed over layers, neurons and classes, (T,)."""
    return runs.counts[:, index].reshape(len(runs.times), -1).sum(-1)


def truncation_trends(runs: ReLUNetRuns, outcomes: Sequence[str]) -> dict[str, float]:
    """Over the truncation-driven runs: the fraction whose total count never decreases, and the fraction
    whose loss decay rate is positively correlated with the count (NaN when there is no such run)."""
    if len(outcomes) != len(runs.seeds):
        raise ValueError(f"outcomes must have one entry per run ({len(runs.seeds)}), got {len(outcomes)}")
    monotone, rising = [], []
    for index, outcome in enumerate(outcomes):
        if outcome != "truncation-driven collapse":
            continue
        monotone.append(bool((np.diff(_total_counts(runs, index)) >= 0).all()))
        segments = loss_rate_segments(runs, index)
        spread = len(segments.counts) >= 2 and np.ptp(segments.counts) > 0 and np.ptp(segments.rates) > 0
        rising.append(bool(spread and np.corrcoef(segments.counts, segments.rates)[0, 1] > 0))
    return {
        "runs": len(monotone),
        "counts never decrease": float(np.mean(monotone)) if monotone else float("nan"),
        "rate rises with count": float(np.mean(rising)) if rising else float("nan"),
    }
