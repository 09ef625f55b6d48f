"""Training encoders on a decoder from a long run: decoder evaluations, and how close they get to the paper's.

A decoder sharpens as it trains, its loss landscape stiffens, and AMD's accepted steps shrink, so
an encoder's cost per image late in a run is not the cost measured on a young decoder. This
benchmark loads a unit's saved state from a ``gfe-viz data-efficiency`` run folder (any
``checkpoints/*.pt``), encodes the same training images from the same z0 with the paper's encoder,
the fast preset and variants of it, and prints per encoder: mean and maximum NFE per image (with
per-sample acceptance a batch waits for its slowest sample), where the attempts go (before and
after the convergence test starts at ``conv_after * tau``), the loss at z* against the paper's,
and how far the training gradient (the approximate adjoint at z*) lies from the paper encoder's.
NFE counts do not depend on the machine's load; the times do.

    GFE_DATA_DIR=../shared/data python benchmarks/bench_encoders_on_a_trained_decoder.py \\
        ~/gfe-runs/mnist-gfe-1M-seed0/checkpoints/mnist-gfe-seed0.pt
"""

from __future__ import annotations

import argparse
import time

import torch

from gfe_viz import AMD_FAST, AMD_MNIST, TRAINING_FAST, TRAINING_PAPER, encode
from gfe_viz.adjoint import approximate_adjoint_gradient
from gfe_viz.data import load_images
from gfe_viz.experiments.results_io import load_torch_file
from gfe_viz.models import initial_model

TAU = 1e4
#: the preset's first version and the present one with one AMD field changed: what each setting buys late in training
VARIANTS = {
    "first version (grow 1.5)": AMD_MNIST.replace(
        dt_max=300.0, grow=1.5, sigma=AMD_MNIST.sigma / 30, conv_tol=AMD_MNIST.conv_tol * 10, stop_at_underflow=True
    ),
    "fast, shrink 0.5": AMD_FAST.replace(shrink=0.5, max_shrinks=20),
    "fast, conv_after 0.02": AMD_FAST.replace(conv_after=0.02),
    "fast, conv_after 0.005": AMD_FAST.replace(conv_after=0.005),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("state", help="a unit's saved state, <run folder>/checkpoints/<unit>.pt (a GFE unit)")
    parser.add_argument("--images", type=int, default=64, help="training images encoded (default: %(default)s)")
    parser.add_argument("--dataset", default="mnist", help="the run's dataset (default: %(default)s)")
    parser.add_argument("--latent-dim", type=int, default=20, help="the run's latent size (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: %(default)s)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    state = load_torch_file(args.state, "name a checkpoints/*.pt file of a data-efficiency run")["trainer"]
    decoder = initial_model("gfe", args.latent_dim, (1, 28, 28), 0)
    decoder.load_state_dict(state["model"])
    x = load_images(args.dataset).train[: args.images]
    z0 = torch.rand(args.images, args.latent_dim, generator=torch.Generator().manual_seed(1))
    encoders = {
        "paper": TRAINING_PAPER,
        "fast (TRAINING_FAST)": TRAINING_FAST,
        **{name: {**TRAINING_FAST, "amd": amd} for name, amd in VARIANTS.items()},
    }
    print(
        f"decoder after {state['images_seen']:,} training images; {args.images} {args.dataset} training images, "
        f"tau {TAU:g}, {args.threads} thread(s)\n"
    )
    print(
        f"{'encoder':30s} {'NFE/img':>8s} {'max NFE':>8s} {'before/after conv':>18s} {'loss - paper':>13s} "
        f"{'|g - g_paper|/|g_paper|':>24s} {'time (s)':>9s}"
    )
    reference = None
    for name, settings in encoders.items():
        start = time.perf_counter()
        result = encode(decoder, x, z0=z0, tau=TAU, record=True, **settings)
        seconds = time.perf_counter() - start
        _, grads = approximate_adjoint_gradient(result.flow, x, result.z)
        gradient = torch.cat([g.flatten() for g in grads])
        reference = reference or (result, gradient)
        steps, starts = result.steps, settings["amd"].conv_after * TAU
        before = ((steps.t < starts) & steps.active).sum(0).double().mean().item()
        after = ((steps.t >= starts) & steps.active).sum(0).double().mean().item()
        gap = (result.loss - reference[0].loss).double().mean().item()
        distance = ((gradient - reference[1]).norm() / reference[1].norm()).item()
        print(
            f"{name:30s} {result.stats.nfe.double().mean().item():8.1f} {result.stats.nfe.max().item():8d} "
            f"{before:9.1f}/{after:<8.1f} {gap:+13.2e} {distance:24.3f} {seconds:9.2f}"
        )


if __name__ == "__main__":
    main()
