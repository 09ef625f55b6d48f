"""Dynamical truncation of training data in ReLU networks, after T. Chen, arXiv 2501.07400.

Gradient descent on a ReLU network, read in input space, moves the thresholds (cumulative biases)
of the truncation maps the hidden layers apply to the data; clusters are truncated at a rate that
grows with the number of points already truncated and, in favourable cases, collapse to points.

Only the paper's abstract and the opening of its introduction could be read. The cumulative
parameters and truncation maps follow the author's earlier papers; the effective threshold ODE
d beta/dt = -(n/N)(beta - y~), its rates with respect to (d, c) and the weighted-mean behaviour
without separation are a reconstruction under stated assumptions, checked numerically here, not
quoted from the paper.

Modules: :mod:`.network` (cumulative parameters, truncation maps, counts, NC1),
:mod:`.threshold_ode` (exact and Euler solutions, measured rates), :mod:`.experiments` (E1 to E4),
:mod:`.figures` (plotly figures) and :mod:`.widgets` (slider views).
"""

from .experiments import (
    AlignedRun,
    ReLUNetRuns,
    ThresholdODERun,
    aligned_rate_segments,
    classify_runs,
    default_relu_network,
    gaussian_clusters,
    loss_rate_segments,
    outcome_fractions,
    run_threshold_ode,
    train_aligned_network,
    train_relu_networks,
    truncated_mean_target,
    truncation_trends,
)
from .figures import (
    collapse_figure,
    input_space_animation,
    loss_rate_figure,
    outcome_figure,
    rate_figure,
    threshold_ode_figure,
    truncation_history_figure,
    unseparated_figure,
)
from .network import (
    CumulativeDiagonalReLUNet,
    ForwardPass,
    clamp_truncation,
    cumulative_parameters,
    iterated_truncation,
    nc1,
    relu_forward,
    sequential_parameters,
    to_input_space,
    truncation_counts,
    truncation_map,
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
from .widgets import threshold_ode_explorer

__all__ = [
    # network: cumulative parameters, truncation maps, counts, NC1
    "CumulativeDiagonalReLUNet",
    "ForwardPass",
    "clamp_truncation",
    "cumulative_parameters",
    "iterated_truncation",
    "nc1",
    "relu_forward",
    "sequential_parameters",
    "to_input_space",
    "truncation_counts",
    "truncation_map",
    "within_class_variance",
    # threshold ODE
    "RateSegments",
    "SampledPath",
    "ThresholdPath",
    "euler_threshold_path",
    "exact_threshold_path",
    "seed_threshold",
    "segment_rates",
    # experiments E1 to E4
    "AlignedRun",
    "ReLUNetRuns",
    "ThresholdODERun",
    "aligned_rate_segments",
    "classify_runs",
    "default_relu_network",
    "gaussian_clusters",
    "loss_rate_segments",
    "outcome_fractions",
    "run_threshold_ode",
    "train_aligned_network",
    "train_relu_networks",
    "truncated_mean_target",
    "truncation_trends",
    # figures and views
    "collapse_figure",
    "input_space_animation",
    "loss_rate_figure",
    "outcome_figure",
    "rate_figure",
    "threshold_ode_explorer",
    "threshold_ode_figure",
    "truncation_history_figure",
    "unseparated_figure",
]
