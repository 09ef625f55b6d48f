"""Slider views for the truncation lesson, built on the series' one interactive pattern.

Each builder returns a :class:`~gfe_viz.viz.interactive.InteractiveView`: sliders whose changes
re-run an experiment and replace the one plotly figure shown, plus rounded summary numbers that
replay cells print.
"""

from __future__ import annotations

from functools import lru_cache

import ipywidgets as widgets
import numpy as np

from .._checks import check_positive, check_positive_int
from ..viz.interactive import InteractiveView, interactive_view
from .experiments import run_threshold_ode
from .figures import threshold_ode_figure


def threshold_ode_explorer(
    n_points: int = 40, n_seed: int = 3, target: float = 1.0, step: float = 1e-2, t_end: float = 8.0
) -> InteractiveView:
    """E1: sliders for the target y~ (beyond, inside or behind the cluster), the seed points n(0), N, the
    Euler step and the time shown in the data strip; redraws :func:`threshold_ode_figure`.

    Summary: the number of events, the final count, the time of full truncation (NaN if never), the
    largest gap between the measured Euler rates and n/N, and between Euler and the exact solution.
    """
    check_positive_int("n_points", n_points)
    check_positive("t_end", t_end)

    @lru_cache(maxsize=32)
    def solved(target: float, n_seed: int, n_points: int, step: float):
        return run_threshold_ode(n_points=n_points, n_seed=n_seed, target=target, step=step, t_end=t_end)

    def render(target: float, n_seed: int, n_points: int, step: float, time: float):
        run = solved(target, min(n_seed, n_points), n_points, step)  # the strip's time never solves again
        full = run.exact.counts == n_points
        summary = {
            "events": len(run.exact.event_times),
            "final count": int(run.exact.counts[-1]),
            "full truncation at t": float(run.exact.starts[np.argmax(full)]) if full.any() else float("nan"),
            "max |rate - n/N|": float(np.abs(run.rates.rates - run.rates.counts / n_points).max(initial=0.0)),
            "max |Euler - exact|": float(np.abs(run.euler.beta - run.exact.beta(run.euler.times)).max()),
        }
        return threshold_ode_figure(run, time), summary

    controls = {
        "target": widgets.FloatSlider(value=target, min=-1.5, max=2.0, step=0.05, description="target y~"),
        "n_seed": widgets.IntSlider(value=n_seed, min=0, max=200, description="seed points"),
        "n_points": widgets.IntSlider(value=n_points, min=2, max=200, description="N"),
        "step": widgets.FloatLogSlider(value=step, base=10, min=-4, max=-0.3, step=0.1, description="Euler step"),
        "time": widgets.FloatSlider(value=t_end / 2, min=0.0, max=t_end, step=t_end / 100, description="strip at t"),
    }
    return interactive_view(render, controls)
