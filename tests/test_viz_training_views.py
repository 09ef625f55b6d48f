"""Figures of the decoder-training lesson, built from a hand-made gradient comparison."""

from __future__ import annotations

import numpy as np
import pytest

from gfe_viz.gradient_compare import GradientComparison
from gfe_viz.viz.training_views import gradient_agreement_figure, gradient_scatter_view


@pytest.fixture
def comparison():
    rng = np.random.default_rng(0)
    full = rng.normal(size=(3, 50))
    approx = full + rng.normal(size=(3, 50)) * np.array([[0.5], [0.2], [0.01]])
    return GradientComparison(
        tau=np.array([1.0, 10.0, 100.0]),
        cosine=np.array([0.9, 0.95, 0.999]),
        norm_ratio=np.array([1.1, 0.97, 1.0]),
        grad_norm=np.array([0.1, 0.01, 0.001]),
        loss=np.array([0.4, 0.3, 0.25]),
        nfe=np.array([2.0, 9.0, 27.0]),
        approx_entries=approx,
        full_entries=full,
    )


def test_agreement_figure_plots_both_measures_against_tau_and_gradient_norm(comparison):
    figure = gradient_agreement_figure(comparison)
    assert [t.name for t in figure.data] == ["cosine similarity", "norm ratio ‖approx‖ / ‖full‖"] * 2
    cos_tau, ratio_tau, cos_norm, _ = figure.data
    assert np.allclose(cos_tau.x, [1.0, 10.0, 100.0]) and np.allclose(cos_tau.y, [0.9, 0.95, 0.999])
    assert np.allclose(ratio_tau.y, [1.1, 0.97, 1.0])
    assert np.allclose(cos_norm.x, [0.1, 0.01, 0.001]) and cos_norm.xaxis == "x2" and not cos_norm.showlegend
    assert figure.layout.xaxis.type == "log" and figure.layout.xaxis2.autorange == "reversed"
    assert "NFE=27.0" in cos_tau.text[2]


def test_scatter_view_shows_the_entries_of_the_chosen_horizon(comparison):
    view = gradient_scatter_view(comparison)
    assert view.controls["tau"].value == 100.0
    entries, diagonal, *curves = view.figure.data
    assert np.allclose(entries.x, comparison.full_entries[2], rtol=1e-3)
    assert np.allclose(entries.y, comparison.approx_entries[2], rtol=1e-3)
    assert diagonal.x[0] == -diagonal.x[1] and diagonal.x[1] >= np.abs(comparison.full_entries[2]).max()
    assert view.summary["cosine"] == 0.999 and view.summary["nfe"] == 27.0

    view.update(tau=10.0)
    entries = view.figure.data[0]
    assert np.allclose(entries.y, comparison.approx_entries[1], rtol=1e-3)
    assert view.summary == {"tau": 10.0, "cosine": 0.95, "norm_ratio": 0.97, "grad_norm": 0.01, "loss": 0.3, "nfe": 9.0}
    current = [t for t in view.figure.data if t.name == "cosine similarity at tau"][0]
    assert list(current.x) == [10.0] and list(current.y) == [0.95]
    assert view.report() == "tau=10, cosine=0.95, norm_ratio=0.97, grad_norm=0.01, loss=0.3, nfe=9"


def test_views_need_a_comparison():
    with pytest.raises(TypeError, match="comparison must be a GradientComparison, got dict"):
        gradient_agreement_figure({})
    with pytest.raises(TypeError, match="comparison must be a GradientComparison, got list"):
        gradient_scatter_view([])
