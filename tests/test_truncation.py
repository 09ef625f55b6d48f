"""Tests of gfe_viz.truncation: input-space identities, the threshold ODE, the experiments, figures and views."""

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from gfe_viz.truncation import (
    CumulativeDiagonalReLUNet,
    ReLUNetRuns,
    aligned_rate_segments,
    clamp_truncation,
    classify_runs,
    collapse_figure,
    cumulative_parameters,
    default_relu_network,
    euler_threshold_path,
    exact_threshold_path,
    gaussian_clusters,
    input_space_animation,
    iterated_truncation,
    loss_rate_figure,
    loss_rate_segments,
    nc1,
    outcome_figure,
    outcome_fractions,
    rate_figure,
    relu_forward,
    run_threshold_ode,
    seed_threshold,
    segment_rates,
    sequential_parameters,
    threshold_ode_explorer,
    threshold_ode_figure,
    to_input_space,
    train_aligned_network,
    train_relu_networks,
    truncated_mean_target,
    truncation_counts,
    truncation_history_figure,
    truncation_map,
    truncation_trends,
    unseparated_figure,
    within_class_variance,
)
from gfe_viz.truncation.figures import ROUND_OFF_FLOOR
from gfe_viz.viz.plotting import play_button

F64 = torch.float64


def random_diagonal_net(n_layers=4, width=3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    magnitudes = 0.5 + torch.rand(n_layers, width, generator=generator, dtype=F64)
    signs = torch.where(torch.rand(n_layers, width, generator=generator, dtype=F64) < 0.5, -1.0, 1.0)
    c = torch.randn(n_layers, width, generator=generator, dtype=F64)
    output_weight = torch.randn(width, width, generator=generator, dtype=F64) + 3 * torch.eye(width, dtype=F64)
    return CumulativeDiagonalReLUNet(
        signs * magnitudes, c, output_weight, torch.randn(width, generator=generator, dtype=F64)
    )


def random_generic_layers(n_layers=3, width=3, seed=1):
    generator = torch.Generator().manual_seed(seed)
    weights = [
        torch.randn(width, width, generator=generator, dtype=F64) + 2 * torch.eye(width, dtype=F64)
        for _ in range(n_layers + 1)
    ]
    biases = [torch.randn(width, generator=generator, dtype=F64) for _ in range(n_layers + 1)]
    return weights, biases


# --- network: cumulative parameters and the input-space picture -----------------------------------


def test_iterated_clamps_equal_hidden_representation_mapped_back():
    net = random_diagonal_net()
    x = torch.randn(200, 3, generator=torch.Generator().manual_seed(2), dtype=F64)
    with torch.no_grad():
        forward = net(x)
        weights, biases = net.layer_parameters()
        cumulative_weights, cumulative_biases = cumulative_parameters(weights[:-1], biases[:-1])
        clamps = clamp_truncation(x, net.thresholds(), net.signs())
        for layer, hidden in enumerate(forward.hidden):
            mapped_back = to_input_space(hidden, cumulative_weights[layer], cumulative_biases[layer])
            assert torch.allclose(mapped_back, clamps[layer], rtol=0, atol=1e-12)
        assert torch.allclose(net.input_space(forward.hidden[-1]), clamps[-1], rtol=0, atol=1e-12)
    # the clamps really truncate: some but not all coordinates move
    moved = clamps[-1] != x
    assert moved.any() and not moved.all()


def test_truncation_maps_of_a_generic_network_equal_its_hidden_layers_in_input_space():
    weights, biases = random_generic_layers()
    x = torch.randn(100, 3, generator=torch.Generator().manual_seed(3), dtype=F64)
    forward = relu_forward(x, weights, biases)
    cumulative_weights, cumulative_biases = cumulative_parameters(weights, biases)
    representations = iterated_truncation(x, weights[:-1], biases[:-1])
    for layer, hidden in enumerate(forward.hidden):
        expected = to_input_space(hidden, cumulative_weights[layer], cumulative_biases[layer])
        assert torch.allclose(representations[layer], expected, rtol=0, atol=1e-12)
    # the output layer is affine in the last input-space representation, with the cumulative pair
    output = representations[-1] @ cumulative_weights[-1].T + cumulative_biases[-1]
    assert torch.allclose(output, forward.output, rtol=0, atol=1e-12)


def test_sequential_parameters_reproduce_the_module():
    net = default_relu_network(depth=3, width=2, seed=4)
    x = torch.randn(20, 2, generator=torch.Generator().manual_seed(6), dtype=F64)
    weights, biases = sequential_parameters(net)
    assert len(weights) == 4
    assert torch.allclose(relu_forward(x, weights, biases).output, net(x).detach(), rtol=0, atol=1e-14)
    with pytest.raises(TypeError, match="network must be a torch.nn.Sequential"):
        sequential_parameters(torch.nn.Linear(2, 2))


def test_truncation_map_is_identity_on_its_cone_and_a_projection():
    weights, biases = random_generic_layers(n_layers=1)
    x = torch.randn(300, 3, generator=torch.Generator().manual_seed(4), dtype=F64)
    image = truncation_map(x, weights[0], biases[0])
    inside = ((x @ weights[0].T + biases[0]) >= 0).all(1)
    assert inside.any() and not inside.all()
    assert torch.allclose(image[inside], x[inside], rtol=0, atol=1e-12)
    assert torch.allclose(truncation_map(image, weights[0], biases[0]), image, rtol=0, atol=1e-12)


def test_cumulative_parameters_handle_a_batch_of_networks():
    weights, biases = random_generic_layers()
    batched_w, batched_b = cumulative_parameters(
        [torch.stack([w, 2 * w]) for w in weights], [torch.stack([b, b]) for b in biases]
    )
    single_w, single_b = cumulative_parameters(weights, biases)
    assert torch.allclose(batched_w[-1][0], single_w[-1]) and torch.allclose(batched_b[-1][0], single_b[-1])
    assert torch.allclose(batched_w[-1][1], 2 ** len(weights) * single_w[-1])


def test_truncation_counts_count_strictly_negative_pre_activations_per_class():
    pre = torch.tensor([[-1.0, 0.0], [-0.5, 2.0], [0.0, -3.0], [1.0, -1.0]], dtype=F64)
    labels = torch.tensor([0, 0, 1, 1])
    counts = truncation_counts([pre, -pre], labels, 2)
    assert counts.shape == (2, 2, 2)
    assert counts[0].tolist() == [[2, 0], [0, 2]]
    assert counts[1].tolist() == [[0, 1], [1, 0]]


def test_nc1_is_zero_for_collapsed_clusters_and_matches_its_definition():
    labels = torch.tensor([0] * 5 + [1] * 7)
    collapsed = torch.tensor([[1.0, 2.0]] * 5 + [[-1.0, 0.5]] * 7, dtype=F64)
    assert nc1(collapsed, labels, 2).item() == pytest.approx(0.0, abs=1e-28)
    assert within_class_variance(collapsed, labels, 2).abs().max().item() < 1e-28
    features = torch.randn(12, 2, generator=torch.Generator().manual_seed(5), dtype=F64)
    half_collapsed = torch.where(labels.unsqueeze(1) == 0, collapsed, features)
    variance = within_class_variance(half_collapsed, labels, 2)
    assert variance[0].item() < 1e-28 and variance[1].item() > 0.1
    # Papyan et al.'s definition, written out with loops
    h = features.numpy()
    means = [h[labels.numpy() == j].mean(0) for j in range(2)]
    within = sum(np.outer(p - means[j], p - means[j]) for p, j in zip(h, labels.numpy())) / len(h)
    between = sum(np.outer(m - h.mean(0), m - h.mean(0)) for m in means) / 2
    expected = np.trace(within @ np.linalg.pinv(between)) / 2
    assert nc1(features, labels, 2).item() == pytest.approx(expected, rel=1e-10)
    batch = torch.stack([features, collapsed])
    assert torch.allclose(nc1(batch, labels, 2), torch.stack([nc1(features, labels, 2), nc1(collapsed, labels, 2)]))


def test_network_functions_reject_bad_input():
    with pytest.raises(ValueError, match="d .*no zero entry"):
        CumulativeDiagonalReLUNet(
            torch.zeros(2, 2, dtype=F64),
            torch.zeros(2, 2, dtype=F64),
            torch.eye(2, dtype=F64),
            torch.zeros(2, dtype=F64),
        )
    with pytest.raises(ValueError, match="thresholds and signs"):
        clamp_truncation(torch.zeros(3, 2, dtype=F64), torch.zeros(2, 3, dtype=F64), torch.ones(2, 3, dtype=F64))
    with pytest.raises(ValueError, match="every class"):
        nc1(torch.zeros(3, 2, dtype=F64), torch.tensor([0, 0, 0]), 2)
    with pytest.raises(ValueError, match="weights and biases"):
        relu_forward(torch.zeros(3, 2, dtype=F64), [torch.eye(2, dtype=F64)], [])
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        iterated_truncation([[0.0, 1.0]], [torch.eye(2, dtype=F64)], [torch.zeros(2, dtype=F64)])


# --- the threshold ODE ----------------------------------------------------------------------------

POINTS = 0.3 * np.random.default_rng(0).standard_normal(40)


def test_event_driven_solution_matches_fine_euler_integration_at_first_order():
    beta0 = seed_threshold(POINTS, 3)
    exact = exact_threshold_path(POINTS, 1.0, beta0)
    errors = []
    for step in (1e-3, 1e-4):
        euler = euler_threshold_path(POINTS, 1.0, beta0, step, 4.0)
        errors.append(np.abs(euler.beta - exact.beta(euler.times)).max())
    assert errors[1] < 1e-4
    assert 5 < errors[0] / errors[1] < 20  # first order in the step
    euler = euler_threshold_path(POINTS, 1.0, beta0, 1e-4, 4.0)
    full_exact = exact.starts[np.argmax(exact.counts == 40)]
    full_euler = euler.times[np.argmax(euler.counts == 40)]
    assert abs(full_exact - full_euler) < 1e-3


def test_measured_rates_equal_n_over_n_in_the_separated_case():
    exact = exact_threshold_path(POINTS, 1.0, seed_threshold(POINTS, 3))
    # between consecutive events the exact solution decays at exactly n/N
    exact_rates = segment_rates(exact.starts, np.abs(exact.beta(exact.starts) - 1.0), exact.counts)
    assert exact_rates.counts.tolist() == list(range(3, 40))
    np.testing.assert_allclose(exact_rates.rates, exact_rates.counts / 40, rtol=1e-10)
    # Euler at step h contracts by 1 - h n/N per step: rate -ln(1 - h n/N)/h = n/N + O(h)
    run = run_threshold_ode(n_points=40, n_seed=3, target=1.0, step=1e-3, t_end=4.0)
    expected = -np.log(1 - 1e-3 * run.rates.counts / 40) / 1e-3
    np.testing.assert_allclose(run.rates.rates, expected, rtol=1e-6)
    assert np.abs(run.rates.rates - run.rates.counts / 40).max() < 1e-3


def test_event_times_put_the_threshold_on_data_points_and_full_truncation_is_finite():
    exact = exact_threshold_path(POINTS, 1.0, seed_threshold(POINTS, 3))
    on_points = np.abs(exact.start_betas[1:, None] - POINTS[None, :]).min(1)
    assert on_points.max() < 1e-12
    assert np.all(np.diff(exact.event_times) > 0)
    assert exact.counts[-1] == 40 and np.isfinite(exact.event_times[-1])
    assert exact.beta(100.0) == pytest.approx(1.0, abs=1e-10)


def test_solution_types_partial_stalled_and_receding():
    partial = exact_threshold_path(POINTS, 0.0, seed_threshold(POINTS, 3))
    assert 3 < partial.counts[-1] < 40 and partial.counts[-1] == (POINTS < 0).sum()
    stalled = exact_threshold_path(POINTS, 1.0, seed_threshold(POINTS, 0))
    assert stalled.counts.tolist() == [0] and stalled.beta(5.0) == pytest.approx(stalled.start_betas[0])
    receding = exact_threshold_path(POINTS, -2.0, seed_threshold(POINTS, 5))
    assert receding.counts.tolist() == [5, 4, 3, 2, 1, 0]
    assert receding.beta(1e6) == pytest.approx(np.sort(POINTS)[0])


def test_min_type_threshold_is_the_mirror_image():
    beta0 = seed_threshold(POINTS, 4, "min")
    assert (POINTS > beta0).sum() == 4
    mirrored = exact_threshold_path(-POINTS, 1.0, -beta0)
    path = exact_threshold_path(POINTS, -1.0, beta0, "min")
    times = np.linspace(0, 5, 50)
    np.testing.assert_allclose(path.beta(times), -mirrored.beta(times), atol=1e-14)
    euler = euler_threshold_path(POINTS, -1.0, beta0, 1e-2, 5.0, "min")
    assert np.abs(euler.beta - path.beta(euler.times)).max() < 1e-2


def test_seed_threshold_truncates_exactly_n_seed_points():
    for n_seed in range(41):
        assert (POINTS < seed_threshold(POINTS, n_seed)).sum() == n_seed


def test_threshold_functions_reject_bad_input():
    with pytest.raises(ValueError, match="threshold_type"):
        exact_threshold_path(POINTS, 1.0, 0.0, "middle")
    with pytest.raises(ValueError, match="n_seed"):
        seed_threshold(POINTS, 41)
    with pytest.raises(ValueError, match="step"):
        euler_threshold_path(POINTS, 1.0, 0.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="points"):
        exact_threshold_path([], 1.0, 0.0)
    with pytest.raises(ValueError, match="target"):
        exact_threshold_path(POINTS, float("nan"), 0.0)
    with pytest.raises(ValueError, match="times must be >= 0"):
        exact_threshold_path(POINTS, 1.0, 0.0).beta([-1.0])
    with pytest.raises(ValueError, match="common length"):
        segment_rates([0, 1], [1, 2, 3], [0, 0])


# --- E2 and E3: the aligned network --------------------------------------------------------------


def corner_targets_output_layer(x, labels, margin=0.05):
    """A diagonal output layer whose pulled-back targets lie just beyond cluster 0's top corner and
    cluster 1's bottom corner, so that both clusters can be truncated completely."""
    target_0 = x[labels == 0].max(0).values + margin
    target_1 = x[labels == 1].min(0).values - margin
    diagonal = torch.tensor([1.0, -1.0], dtype=F64) / (target_0 - target_1)
    return torch.diag(diagonal), torch.tensor([1.0, 0.0], dtype=F64) - diagonal * target_0


@pytest.fixture(scope="module")
def separated():
    x, labels = gaussian_clusters([(-1, -1), (1, 1)], n_per_cluster=20, seed=3)
    output_weight, output_bias = corner_targets_output_layer(x, labels)
    run = train_aligned_network(
        x,
        labels,
        [(-1, -1), (1, 1)],
        [(1, 1), (-1, -1)],
        output_weight,
        output_bias,
        step=0.05,
        t_end=15.0,
        n_snapshots=6,
    )
    return x, labels, run


def test_aligned_network_collapses_both_clusters_by_truncation(separated):
    x, labels, run = separated
    main_counts = np.stack([run.counts[:, 0, :, 0], run.counts[:, 1, :, 1]], 1)  # max-type on 0, min-type on 1
    assert (np.diff(main_counts, axis=0) >= 0).all()  # the staircases only go up
    assert (main_counts[-1] == 20).all()
    assert run.counts[:, 0, :, 1].sum() == 0 and run.counts[:, 1, :, 0].sum() == 0  # cluster separated
    assert run.nc1[0] > 1e-3 and run.nc1[-1] < 1e-25
    np.testing.assert_allclose(run.targets[-1], run.targets[0], atol=0)  # frozen output layer: fixed targets


def test_aligned_network_snapshots_are_the_iterated_clamps(separated):
    x, labels, run = separated
    signs = torch.tensor([[1.0, 1.0], [-1.0, -1.0]], dtype=F64)
    for time, snapshot in zip(run.snapshot_times, run.snapshots):
        step = int(np.argmin(np.abs(run.times - time)))
        clamps = clamp_truncation(x, torch.from_numpy(run.thresholds[step]), signs)[-1]
        np.testing.assert_allclose(snapshot, clamps.numpy(), rtol=0, atol=1e-12)


def test_aligned_network_rates_normalised_by_the_metric_factor_equal_n_over_n(separated):
    x, labels, run = separated
    for layer in range(2):
        for coordinate in range(2):
            segments = aligned_rate_segments(run, layer, coordinate)
            assert len(segments.counts) > 5
            np.testing.assert_allclose(segments.rates, segments.counts / len(x), atol=1.5e-2)
    # without the factor (1 + beta^2) / d^2 the rates would be off by far more than that
    raw = segment_rates(run.times, np.abs(run.thresholds[:, 0, 0] - run.targets[:, 0, 0]), run.counts[:, 0, 0, 0])
    assert np.abs(raw.rates - raw.counts / len(x)).max() > 0.1


def test_output_cost_and_trainable_output_layer():
    x, labels = gaussian_clusters([(-1, -1), (1, 1)], n_per_cluster=10, seed=3)
    output_weight, output_bias = corner_targets_output_layer(x, labels)
    common = dict(
        thresholds=[(-1, -1), (1, 1)],
        signs=[(1, 1), (-1, -1)],
        output_weight=output_weight,
        output_bias=output_bias,
        step=0.02,
        t_end=2.0,
        n_snapshots=2,
    )
    output_cost = train_aligned_network(x, labels, cost="output", **common)
    np.testing.assert_allclose(output_cost.output_metric, torch.diagonal(output_weight.T @ output_weight).numpy())
    segments = aligned_rate_segments(output_cost, 0, 0)
    np.testing.assert_allclose(segments.rates, segments.counts / len(x), atol=0.05)
    trainable = train_aligned_network(x, labels, train_output=True, **common)
    assert np.abs(trainable.targets[-1] - trainable.targets[0]).max() > 1e-3
    with pytest.raises(ValueError, match="cost"):
        train_aligned_network(x, labels, cost="hinge", **common)


def test_experiment_runners_reject_bad_input():
    x, labels = gaussian_clusters([(-1, -1), (1, 1)], n_per_cluster=3)
    aligned = dict(thresholds=[(-1, -1)], output_weight=torch.eye(2, dtype=F64), output_bias=torch.zeros(2, dtype=F64))
    with pytest.raises(ValueError, match="signs must contain only"):
        train_aligned_network(x, labels, signs=[(1, 0)], **aligned)
    with pytest.raises(ValueError, match="labels must lie in 0..Q-1"):
        train_aligned_network(x, labels + 1, signs=[(1, 1)], **aligned)
    with pytest.raises(ValueError, match="labels must be an integer"):
        train_relu_networks(x, labels.double(), depth=2, seeds=[0])
    with pytest.raises(ValueError, match="seeds"):
        train_relu_networks(x, labels, depth=2, seeds=[])
    with pytest.raises(ValueError, match="centres"):
        gaussian_clusters([1.0, 2.0])


def test_truncated_mean_target_is_the_count_weighted_mean(separated):
    x, labels, run = separated
    mean = truncated_mean_target(run, 0, 0)
    assert np.isnan(mean[run.counts[:, 0, 0].sum(-1) == 0]).all()
    np.testing.assert_allclose(mean[-1], run.targets[-1, 0, 0])  # only cluster 0 truncated
    fake = type(run)(**{**run.__dict__, "counts": np.tile([[[[1, 3]]]], (len(run.times), 1, 1, 1))})
    np.testing.assert_allclose(truncated_mean_target(fake, 0, 0), (run.targets[:, 0, 0] + 3 * run.targets[:, 1, 0]) / 4)


# --- E4: ordinary networks ------------------------------------------------------------------------


def test_batched_training_equals_each_nn_sequential_trained_alone():
    x, labels = gaussian_clusters([(-1, -1), (1, 1)], n_per_cluster=10, seed=0)
    runs = train_relu_networks(x, labels, depth=2, seeds=[0, 7], step=0.05, t_end=1.0, n_records=21)
    targets = torch.eye(2, dtype=F64)[labels]
    for index, seed in enumerate([0, 7]):
        net = default_relu_network(2, 2, seed)
        optimiser = torch.optim.SGD(net.parameters(), lr=0.05)
        losses = []
        for _ in range(21):
            optimiser.zero_grad()
            loss = 0.5 * ((net(x) - targets) ** 2).sum() / len(x)
            losses.append(loss.item())
            loss.backward()
            optimiser.step()
        np.testing.assert_allclose(runs.loss[:, index], losses, rtol=1e-12)
    assert runs.counts.shape == (21, 2, 2, 2, 2) and runs.condition.shape == (21, 2, 2)


def fake_runs(loss, condition, full_cluster):
    n = len(loss)
    counts = np.zeros((1, n, 1, 2, 2), dtype=int)
    counts[0, np.asarray(full_cluster), 0, 0, 0] = 5
    return ReLUNetRuns(
        seeds=np.arange(n),
        times=np.array([1.0]),
        loss=np.array([loss]),
        counts=counts,
        condition=np.array(condition, dtype=float).reshape(1, n, 1),
        class_sizes=np.array([5, 5]),
    )


def test_classify_runs_and_outcome_fractions():
    runs = fake_runs(loss=[1e-8, 1e-8, 0.2, 1e-8], condition=[10, 1e6, 10, 10], full_cluster=[True, True, True, False])
    outcomes = classify_runs(runs)
    assert outcomes == ["truncation-driven collapse", "rank-driven collapse", "stalled", "unclassified"]
    fractions = outcome_fractions(outcomes + ["stalled"] * 4)
    assert fractions["stalled"] == pytest.approx(5 / 8) and sum(fractions.values()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="outcome"):
        outcome_fractions(["exploded"])
    with pytest.raises(ValueError, match="loss_tolerance"):
        classify_runs(runs, loss_tolerance=-1.0)


def test_loss_rate_segments_and_trends():
    times = np.arange(6.0)
    counts = np.zeros((6, 2, 1, 2, 2), dtype=int)
    counts[3:, 0, 0, 0, 0] = 5  # run 0: count rises at t = 3, and the loss decays faster afterwards
    loss = np.stack([np.exp(-np.concatenate([np.arange(4) * 0.1, 0.3 + np.arange(1, 3) * 0.5])), np.full(6, 0.2)], 1)
    runs = ReLUNetRuns(
        seeds=np.arange(2),
        times=times,
        loss=loss,
        counts=counts,
        condition=np.ones((6, 2, 1)),
        class_sizes=np.array([5, 5]),
    )
    segments = loss_rate_segments(runs, 0)
    assert segments.counts.tolist() == [0, 5] and np.allclose(segments.rates, [0.1, 0.5])
    trends = truncation_trends(runs, ["truncation-driven collapse", "stalled"])
    assert trends == {"runs": 1, "counts never decrease": 1.0, "rate rises with count": 1.0}
    with pytest.raises(ValueError, match="index"):
        loss_rate_segments(runs, 2)


# --- figures and the slider view ------------------------------------------------------------------


def trace_names(figure):
    return [trace.name for trace in figure.data]


def test_threshold_ode_figure_marks_events_and_colours_truncated_points():
    run = run_threshold_ode(n_points=30, n_seed=3, target=1.0, step=1e-2, t_end=4.0)
    figure = threshold_ode_figure(run, time=1.0)
    names = trace_names(figure)
    for name in (
        "exact solution",
        "Euler",
        "events",
        "measured: Euler",
        "rate = n/N",
        "truncated",
        "untruncated",
        "threshold beta(t)",
        "target y~",
    ):
        assert name in names
    truncated = figure.data[names.index("truncated")]
    assert len(truncated.x) == (run.points < run.exact.beta(1.0)).sum()
    assert figure.layout.yaxis.type == "log"


def test_e2_figures_have_the_expected_traces_and_frames(separated):
    x, labels, run = separated
    animation = input_space_animation(run)
    assert len(animation.frames) == 6 and len(animation.layout.sliders[0].steps) == 6
    assert animation.layout.updatemenus[0].to_plotly_json() == play_button(frame_ms=250, y=-0.16)  # as in 01
    assert trace_names(animation) == [
        "cluster 0",
        "cluster 1",
        "thresholds, layer 1",
        "thresholds, layer 2",
        "targets y~",
    ]
    np.testing.assert_allclose(animation.frames[-1].data[0].x, run.snapshots[-1][run.labels == 0, 0])
    history = truncation_history_figure(run)
    names = trace_names(history)
    assert "n(layer 1, x1, cluster 0)" in names and "n(layer 1, x1, cluster 1)" not in names
    staircase = history.data[names.index("n(layer 2, x2, cluster 1)")]
    distance = history.data[names.index("|beta - y~|, layer 2, x2")]
    assert staircase.line.color == distance.line.color and history.layout.yaxis2.type == "log"
    rates = rate_figure({"layer 1, x1": aligned_rate_segments(run, 0, 0)}, len(x), "rates")
    assert trace_names(rates) == ["measured: layer 1, x1", "rate = n/N"]
    collapse = collapse_figure({"frozen": run})
    assert trace_names(collapse) == ["frozen"] and min(collapse.data[0].y) == ROUND_OFF_FLOOR  # collapsed: floor
    unseparated = unseparated_figure({"a": run}, coordinate=1)
    assert "a: y-bar, layer 2" in trace_names(unseparated) and "a: cost" in trace_names(unseparated)
    idle = type(run)(**{**run.__dict__, "counts": run.counts * np.array([1, 0])[None, :, None, None]})
    assert "a: beta, layer 2" not in trace_names(unseparated_figure({"a": idle}, coordinate=1))


def test_e4_figures():
    figure = outcome_figure(
        {
            "depth 2": {"stalled": 0.5, "rank-driven collapse": 0.5},
            "depth 3": {"stalled": 1.0, "rank-driven collapse": 0.0},
        }
    )
    assert trace_names(figure) == ["stalled", "rank-driven collapse"] and list(figure.data[0].y) == [0.5, 1.0]
    runs = fake_runs(loss=[1e-8], condition=[10], full_cluster=[True])
    runs = ReLUNetRuns(
        **{
            **runs.__dict__,
            "times": np.arange(3.0),
            "loss": np.exp(-np.arange(3.0))[:, None],
            "counts": np.repeat(runs.counts, 3, 0),
        }
    )
    assert trace_names(loss_rate_figure(runs, ["truncation-driven collapse"], "rates")) == ["seed 0"]


def test_threshold_ode_explorer_moves_the_strip_without_solving_again(monkeypatch):
    import gfe_viz.truncation.widgets as module

    real, solves = module.run_threshold_ode, []
    monkeypatch.setattr(module, "run_threshold_ode", lambda **kwargs: solves.append(kwargs) or real(**kwargs))
    view = threshold_ode_explorer(n_points=30, n_seed=3, target=1.0, step=1e-2, t_end=4.0)
    view.update(time=1.0)
    view.update(time=3.0)
    assert len(solves) == 1
    view.update(target=0.0)
    assert len(solves) == 2 and solves[-1]["target"] == 0.0
    fresh = threshold_ode_explorer(n_points=30, n_seed=3, target=0.0, step=1e-2, t_end=4.0)
    fresh.update(time=3.0)
    assert fresh.output.outputs == view.output.outputs and fresh.report() == view.report()


def test_threshold_ode_explorer_updates_its_figure_and_summary():
    view = threshold_ode_explorer(n_points=30, n_seed=3, target=1.0, step=1e-2, t_end=4.0)
    first = view.figure
    assert view.summary["final count"] == 30 and np.isfinite(view.summary["full truncation at t"])
    view.controls["target"].value = 0.0  # inside the cluster: partial truncation
    assert view.figure is not first
    assert 3 < view.summary["final count"] < 30 and np.isnan(view.summary["full truncation at t"])
    view.controls["n_seed"].value = 0  # nothing truncated: the threshold never moves
    assert view.summary["events"] == 0 and view.summary["final count"] == 0
    assert view.output.outputs[0]["data"]["application/vnd.plotly.v1+json"]["data"]
    assert isinstance(view.figure, go.Figure)
