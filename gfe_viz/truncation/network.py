"""ReLU networks read in input space: cumulative parameters, truncation maps, counts and NC1.

Following T. Chen, arXiv 2501.07400, and Chen & Munoz Ewald, arXiv 2405.07098, a chain of ReLU
layers x^(l) = relu(W_l x^(l-1) + b_l) is described by its cumulative parameters

    W^(l) = W_l W_(l-1) ... W_1,        b^(l) = W_l b^(l-1) + b_l,

and, when every W^(l) is invertible, by the input-space representation
x~^(l) = (W^(l))^-1 (x^(l) - b^(l)). It obeys x~^(l) = tau_l(x~^(l-1)) with the truncation map
tau_{W,b}(x) = W^-1 (relu(W x + b) - b): the hidden layers act on input space as L truncation
maps. When the cumulative weights are diagonal (the weights are "adapted to the activations")
each map is a coordinatewise clamp at the threshold beta = -b^(l) / W^(l): from below where the
diagonal entry is positive ("max-type"), from above where it is negative ("min-type").
The identity is exact algebra; that this is the paper's own setting is a reconstruction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .._checks import check_positive_int, check_tensor


@dataclass
class ForwardPass:
    """One pass through a ReLU network: per hidden layer the pre-activations and activations."""

    pre_activations: list[torch.Tensor]
    hidden: list[torch.Tensor]
    output: torch.Tensor


def relu_forward(x: torch.Tensor, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor]) -> ForwardPass:
    """Run ``x`` (..., N, Q) through ReLU layers ``weights[:-1]`` and the affine output layer ``weights[-1]``.

    Weights have shape (..., Q_out, Q_in) and biases (..., Q_out); leading dimensions are a batch of
    independent networks (one per seed).
    """
    _check_layers(weights, biases)
    pre_activations, hidden = [], []
    for weight, bias in zip(weights[:-1], biases[:-1]):
        pre = x @ weight.mT + bias.unsqueeze(-2)
        x = torch.relu(pre)
        pre_activations.append(pre)
        hidden.append(x)
    output = x @ weights[-1].mT + biases[-1].unsqueeze(-2)
    return ForwardPass(pre_activations, hidden, output)


def sequential_parameters(network: torch.nn.Sequential) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The weights and biases of the ``nn.Linear`` layers of ``network``, in order (detached copies)."""
    if not isinstance(network, torch.nn.Sequential):
        raise TypeError(f"network must be a torch.nn.Sequential, got {type(network).__name__}")
    linears = [module for module in network if isinstance(module, torch.nn.Linear)]
    return [m.weight.detach().clone() for m in linears], [m.bias.detach().clone() for m in linears]


def cumulative_parameters(
    weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor]
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The cumulative weights W^(l) = W_l ... W_1 and biases b^(l) = W_l b^(l-1) + b_l, for every layer."""
    _check_layers(weights, biases)
    cumulative_weights, cumulative_biases = [], []
    weight_product, bias_sum = None, None
    for weight, bias in zip(weights, biases):
        weight_product = weight if weight_product is None else weight @ weight_product
        bias_sum = bias if bias_sum is None else (weight @ bias_sum.unsqueeze(-1)).squeeze(-1) + bias
        cumulative_weights.append(weight_product)
        cumulative_biases.append(bias_sum)
    return cumulative_weights, cumulative_biases


def truncation_map(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """tau_{W,b}(x) = W^-1 (relu(W x + b) - b) for points ``x`` (..., N, Q) and an invertible ``weight``.

    It is the identity on the cone {W x + b >= 0} and projects the other points onto its faces.
    """
    check_tensor("x", x, min_dim=2)
    return to_input_space(torch.relu(x @ weight.mT + bias.unsqueeze(-2)), weight, bias)


def iterated_truncation(
    x: torch.Tensor, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor]
) -> list[torch.Tensor]:
    """x~^(l) = tau_{W^(l), b^(l)}(x~^(l-1)) for l = 1..L: the hidden ReLU layers acting on input space.

    ``weights`` and ``biases`` are the L hidden layers' own parameters (no output layer).
    """
    check_tensor("x", x, min_dim=2)
    cumulative_weights, cumulative_biases = cumulative_parameters(weights, biases)
    representations = []
    for weight, bias in zip(cumulative_weights, cumulative_biases):
        x = truncation_map(x, weight, bias)
        representations.append(x)
    return representations


def to_input_space(
    hidden: torch.Tensor, cumulative_weight: torch.Tensor, cumulative_bias: torch.Tensor
) -> torch.Tensor:
    """Map a hidden representation back to input space: x~ = (W^(l))^-1 (x^(l) - b^(l))."""
    return torch.linalg.solve(cumulative_weight, (hidden - cumulative_bias.unsqueeze(-2)).mT).mT


def clamp_truncation(x: torch.Tensor, thresholds: torch.Tensor, signs: torch.Tensor) -> list[torch.Tensor]:
    """The truncation maps of diagonal cumulative weights: coordinatewise clamps, one per layer.

    ``thresholds`` and ``signs`` have shape (L, Q): layer l clamps coordinate q from below at
    ``thresholds[l, q]`` where ``signs[l, q] > 0`` (max-type) and from above where it is < 0 (min-type).
    Returns x~^(1), ..., x~^(L).
    """
    check_tensor("x", x, min_dim=2)
    if thresholds.shape != signs.shape or thresholds.dim() != 2 or thresholds.shape[1] != x.shape[-1]:
        raise ValueError(
            f"thresholds and signs must both have shape (L, {x.shape[-1]}), "
            f"got {tuple(thresholds.shape)} and {tuple(signs.shape)}"
        )
    representations = []
    for beta, sign in zip(thresholds, signs):
        x = torch.where(sign > 0, torch.maximum(x, beta), torch.minimum(x, beta))
        representations.append(x)
    return representations


class CumulativeDiagonalReLUNet(torch.nn.Module):
    """A ReLU network whose cumulative weights are diagonal by construction (R_l = 1).

    Its trainable parameters are the cumulative diagonal weights ``d`` (L, Q) and biases ``c`` (L, Q),
    plus the output layer's cumulative pair (``A`` = W^(L+1), ``a`` = b^(L+1)). ``forward`` builds the
    genuine layer weights W_l = diag(d_l / d_(l-1)), b_l = c_l - (d_l / d_(l-1)) c_(l-1) and runs an
    ordinary ReLU network, so gradient descent on (d, c) is gradient descent on a real ReLU network
    in the cumulative parametrisation, where thresholds and pulled-back targets are independent.
    """

    def __init__(
        self,
        d: torch.Tensor,
        c: torch.Tensor,
        output_weight: torch.Tensor,
        output_bias: torch.Tensor,
        train_output: bool = False,
    ):
        super().__init__()
        if d.dim() != 2 or c.shape != d.shape:
            raise ValueError(f"d and c must both have shape (L, Q), got {tuple(d.shape)} and {tuple(c.shape)}")
        if not bool((d != 0).all()):
            raise ValueError(f"d (cumulative diagonal weights) must have no zero entry, got {d.tolist()}")
        q = d.shape[1]
        if output_weight.shape != (q, q) or output_bias.shape != (q,):
            raise ValueError(
                f"output_weight must have shape ({q}, {q}) and output_bias ({q},), "
                f"got {tuple(output_weight.shape)} and {tuple(output_bias.shape)}"
            )
        self.d = torch.nn.Parameter(d.clone())
        self.c = torch.nn.Parameter(c.clone())
        self.output_weight = torch.nn.Parameter(output_weight.clone(), requires_grad=train_output)
        self.output_bias = torch.nn.Parameter(output_bias.clone(), requires_grad=train_output)

    def layer_parameters(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The genuine per-layer weights and biases (L hidden layers, then the output layer)."""
        weights, biases = [], []
        d_previous, c_previous = torch.ones_like(self.d[0]), torch.zeros_like(self.c[0])
        for d, c in zip(self.d, self.c):
            ratio = d / d_previous
            weights.append(torch.diag(ratio))
            biases.append(c - ratio * c_previous)
            d_previous, c_previous = d, c
        output_weight = self.output_weight / d_previous
        weights.append(output_weight)
        biases.append(self.output_bias - output_weight @ c_previous)
        return weights, biases

    def forward(self, x: torch.Tensor) -> ForwardPass:
        return relu_forward(x, *self.layer_parameters())

    def thresholds(self) -> torch.Tensor:
        """beta^(l) = -c_l / d_l, shape (L, Q): where layer l clamps each coordinate in input space."""
        return -self.c / self.d

    def signs(self) -> torch.Tensor:
        """+1 for max-type (clamp from below), -1 for min-type (clamp from above), shape (L, Q)."""
        return torch.sign(self.d)

    def input_space(self, last_hidden: torch.Tensor) -> torch.Tensor:
        """x~^(L) = (x^(L) - c_L) / d_L: the last hidden layer mapped back to input space."""
        return (last_hidden - self.c[-1]) / self.d[-1]

    def pulled_back_targets(self, targets: torch.Tensor) -> torch.Tensor:
        """y~_j = A^-1 (y_j - a): the labels ``targets`` (K, Q) seen in input space."""
        return torch.linalg.solve(self.output_weight, (targets - self.output_bias).T).T


def truncation_counts(pre_activations: Sequence[torch.Tensor], labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """n[..., l, q, j]: how many points of class j have a strictly negative pre-activation at neuron q of layer l.

    A negative pre-activation means ReLU zeroes that coordinate: in input space the point is truncated.
    """
    check_positive_int("n_classes", n_classes)
    one_hot = torch.nn.functional.one_hot(labels, n_classes).to(pre_activations[0].dtype)
    counts = [(pre < 0).to(one_hot.dtype).mT @ one_hot for pre in pre_activations]
    return torch.stack(counts, dim=-3).round().long()


def within_class_variance(features: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Mean squared distance of each class's points to their class mean, shape (..., K).

    Exactly the quantity that vanishes when a cluster has collapsed to one point.
    """
    one_hot, class_means, deviations = _class_deviations(features, labels, n_classes)
    return (one_hot.T @ (deviations**2).sum(-1, keepdim=True)).squeeze(-1) / one_hot.sum(0)


def nc1(features: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Within-class variability NC1 = tr(S_W S_B^+) / K (Papyan, Han & Donoho, 2020), shape (...).

    S_W is the within-class covariance over all N points and S_B the covariance of the class means
    around the global mean. NC1 = 0 when every class has collapsed to a point. With K = 2 classes
    S_B has rank 1, so NC1 only sees the spread along the line through the two class means.
    """
    one_hot, class_means, deviations = _class_deviations(features, labels, n_classes)
    within = deviations.mT @ deviations / features.shape[-2]
    between_deviations = class_means - features.mean(-2, keepdim=True)
    between = between_deviations.mT @ between_deviations / n_classes
    return torch.diagonal(within @ torch.linalg.pinv(between, hermitian=True), dim1=-2, dim2=-1).sum(-1) / n_classes


def _class_deviations(
    features: torch.Tensor, labels: torch.Tensor, n_classes: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One-hot labels (N, K), class means (..., K, Q) and each point's offset from its class mean."""
    check_tensor("features", features, min_dim=2)
    check_positive_int("n_classes", n_classes)
    if labels.shape != features.shape[-2:-1]:
        raise ValueError(f"labels must have shape ({features.shape[-2]},) to match features, got {tuple(labels.shape)}")
    one_hot = torch.nn.functional.one_hot(labels, n_classes).to(features.dtype)
    sizes = one_hot.sum(0)
    if bool((sizes == 0).any()):
        raise ValueError(f"labels must contain every class 0..{n_classes - 1}, got class sizes {sizes.tolist()}")
    class_means = (one_hot.T @ features) / sizes.unsqueeze(-1)
    return one_hot, class_means, features - one_hot @ class_means


def _check_layers(weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor]) -> None:
    if len(weights) == 0 or len(weights) != len(biases):
        raise ValueError(
            f"weights and biases must be non-empty lists of the same length, "
            f"got {len(weights)} weights and {len(biases)} biases"
        )
