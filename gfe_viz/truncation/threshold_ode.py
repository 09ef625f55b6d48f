"""The effective threshold ODE in one coordinate: exact event-driven solution, Euler steps, measured rates.

A reconstruction, not a quotation: only the abstract and the opening of the introduction of
T. Chen, arXiv 2501.07400, could be read. With cumulative weights adapted to the activations and
the Euclidean cost in the input layer, gradient flow moves a max-type threshold beta (points
x < beta are truncated, i.e. clamped to beta) as

    d beta / dt = -(n(t) / N) (beta - y~),

where n(t) is the number of truncated points, N the number of points and y~ the pulled-back target.
Between events (beta crossing a data point) n is constant, so beta - y~ decays exponentially at rate
n / N; each event raises or lowers the rate by 1 / N. That is the paper's "truncation at an
exponential rate that increases with the number of data points already truncated". A min-type
threshold (x > beta truncated) is the mirror image and is solved by reflecting x -> -x.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

from .._checks import check_choice, check_positive

THRESHOLD_TYPES = ("max", "min")


@dataclass(frozen=True)
class SampledPath:
    """A threshold path sampled at ``times``: the threshold ``beta`` and the number truncated ``counts``."""

    times: np.ndarray
    beta: np.ndarray
    counts: np.ndarray


@dataclass(frozen=True)
class ThresholdPath:
    """Exact solution of the threshold ODE: one exponential segment between consecutive events.

    Segment k starts at time ``starts[k]`` with threshold ``start_betas[k]`` and ``counts[k]`` points
    truncated; ``starts[1:]`` are the event times (beta reaching a data point).
    """

    target: float
    n_points: int
    starts: np.ndarray
    start_betas: np.ndarray
    counts: np.ndarray

    @property
    def event_times(self) -> np.ndarray:
        return self.starts[1:]

    def beta(self, times) -> np.ndarray:
        """beta(t) = y~ + (beta(t_k) - y~) exp(-(n_k / N)(t - t_k)) on segment k."""
        times = np.asarray(times, dtype=float)
        if not np.all(times >= 0):
            raise ValueError(f"times must be >= 0 (the solution starts at t = 0), got minimum {times.min()!r}")
        segment = np.searchsorted(self.starts, times, side="right") - 1
        rate = self.counts[segment] / self.n_points
        return self.target + (self.start_betas[segment] - self.target) * np.exp(-rate * (times - self.starts[segment]))


@dataclass(frozen=True)
class RateSegments:
    """Measured decay rates of a distance, one per stretch of time with a constant count."""

    counts: np.ndarray
    rates: np.ndarray


def seed_threshold(points, n_seed: int, threshold_type: str = "max") -> float:
    """A threshold with exactly ``n_seed`` points truncated: halfway between two neighbouring points.

    For ``n_seed`` = 0 (or all points) it sits half the mean spacing beyond the first (last) point.
    """
    sign, ordered = _reflected_sorted(points, threshold_type)
    if isinstance(n_seed, bool) or not isinstance(n_seed, int) or not 0 <= n_seed <= len(ordered):
        raise ValueError(f"n_seed must be an integer in [0, {len(ordered)}], got {n_seed!r}")
    half_gap = (ordered[-1] - ordered[0]) / (2 * max(len(ordered) - 1, 1))
    padded = np.concatenate([[ordered[0] - 2 * half_gap], ordered, [ordered[-1] + 2 * half_gap]])
    return float(sign * (padded[n_seed] + padded[n_seed + 1]) / 2)


def exact_threshold_path(points, target: float, beta0: float, threshold_type: str = "max") -> ThresholdPath:
    """Solve d beta/dt = -(n/N)(beta - target) exactly, event by event.

    Moving towards the target, beta reaches the next data point x after the waiting time
    (N / n) ln(|target - beta| / |target - x|) and the count changes by the points at x: up when beta
    moves into the untruncated side, down when it recedes. No event happens once the target lies
    before the next point; once n = 0 the threshold stops for good.
    """
    _check_finite("target", target)
    _check_finite("beta0", beta0)
    sign, ordered = _reflected_sorted(points, threshold_type)
    target_r, beta = sign * target, sign * beta0
    n_points = len(ordered)
    count = int(np.searchsorted(ordered, beta, side="left"))
    starts, betas, counts = [0.0], [beta], [count]
    time = 0.0
    while count > 0 and beta != target_r:
        if target_r > beta:
            if count == n_points or ordered[count] >= target_r:
                break
            point = ordered[count]
            new_count = int(np.searchsorted(ordered, point, side="right"))
        else:
            point = ordered[count - 1]
            if point <= target_r:
                break
            new_count = int(np.searchsorted(ordered, point, side="left"))
        time += n_points / count * math.log((target_r - beta) / (target_r - point))
        beta, count = point, new_count
        starts.append(time)
        betas.append(beta)
        counts.append(count)
    return ThresholdPath(
        target=float(target),
        n_points=n_points,
        starts=np.array(starts),
        start_betas=sign * np.array(betas),
        counts=np.array(counts),
    )


def euler_threshold_path(
    points, target: float, beta0: float, step: float, t_end: float, threshold_type: str = "max"
) -> SampledPath:
    """Explicit Euler steps beta <- beta - step (n/N)(beta - target), the count n recomputed every step.

    This is plain gradient descent on the input-layer cost in the threshold variable, with
    learning rate ``step``; time is step x number of steps.
    """
    _check_finite("target", target)
    _check_finite("beta0", beta0)
    check_positive("step", step)
    check_positive("t_end", t_end)
    sign, ordered = _reflected_sorted(points, threshold_type)
    ordered_list = ordered.tolist()
    target_r, beta = sign * target, sign * beta0
    n_points = len(ordered_list)
    n_steps = max(int(round(t_end / step)), 1)
    betas = np.empty(n_steps + 1)
    counts = np.empty(n_steps + 1, dtype=int)
    for i in range(n_steps + 1):
        count = bisect.bisect_left(ordered_list, beta)
        betas[i], counts[i] = beta, count
        beta -= step * count / n_points * (beta - target_r)
    return SampledPath(times=step * np.arange(n_steps + 1), beta=sign * betas, counts=counts)


def segment_rates(times, distance, counts, metric=None) -> RateSegments:
    """Decay rates -d/dt ln(distance), averaged over each maximal run of steps with the same count.

    Step i (from ``times[i]`` to ``times[i+1]``) is credited to ``counts[i]``, the count that drove
    it. ``metric`` (optional, one value per time) divides each step's rate, e.g. by the factor a
    parametrisation puts in front of n/N. Steps at zero distance are left out.
    """
    times, distance, counts = (np.asarray(a, dtype=float) for a in (times, distance, counts))
    if not times.shape == distance.shape == counts.shape or times.ndim != 1 or len(times) < 2:
        raise ValueError(
            f"times, distance and counts must be 1-D arrays of one common length >= 2, "
            f"got shapes {times.shape}, {distance.shape}, {counts.shape}"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        step_rates = -np.diff(np.log(distance)) / np.diff(times)
    if metric is not None:
        step_rates = step_rates / np.asarray(metric, dtype=float)[:-1]
    step_counts = counts[:-1]
    runs = np.split(np.arange(len(step_counts)), np.flatnonzero(np.diff(step_counts)) + 1)
    counts, rates = [], []
    for run in runs:
        finite = run[np.isfinite(step_rates[run])]
        if len(finite):
            counts.append(int(step_counts[run[0]]))
            rates.append(step_rates[finite].mean())
    return RateSegments(counts=np.array(counts, dtype=int), rates=np.array(rates, dtype=float))


def _reflected_sorted(points, threshold_type: str) -> tuple[int, np.ndarray]:
    """The reflection sign (+1 max-type, -1 min-type) and the reflected points, sorted."""
    check_choice("threshold_type", threshold_type, THRESHOLD_TYPES)
    values = np.asarray(points, dtype=float)
    if values.ndim != 1 or len(values) == 0 or not np.isfinite(values).all():
        raise ValueError(f"points must be a non-empty 1-D array of finite numbers, got shape {values.shape}")
    sign = 1 if threshold_type == "max" else -1
    return sign, np.sort(sign * values)


def _check_finite(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
