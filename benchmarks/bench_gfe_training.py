"""GFE-AMD decoder training speed: the paper's encoder against the fast training preset.

Trains the MNIST decoder (d = 20, RMSprop, z0 uniform, tau 1e4) from the same initial weights on
the same image stream with each encoder, at batch 5 (the authors' configuration) and batch 16
(the batch the paper's plots imply), and prints per row: training images/s, the ratio to the
authors' 3.8 images/s and to the paper-settings row of the same batch, the training loss over the
last 50 images, the mean encoder NFE per image, decoder calls per encode (a batch waits for its
slowest sample), the solver overhead = encode time / (decoder calls x time of one autograd
forward+backward at that batch, measured once per batch size), and the bound those calls set:
batch / (calls x forward+backward time), the images/s of a free solver and a free decoder update.
``--long-images N`` adds the same rows over the first N training images at batch 16 (loss over
the last 500). Every figure comes from this one run, so ratios between rows are comparable.

    GFE_DATA_DIR=../shared/data python benchmarks/bench_gfe_training.py --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from gfe_viz import TRAINING_PAPER, MLPDecoder
from gfe_viz.data import load_images
from gfe_viz.flows import GradientFlow
from gfe_viz.models import initial_model
from gfe_viz.presets import ENCODERS as TRAINING_ENCODERS
from gfe_viz.training import EncodeSettings, TrainConfig, Trainer

AUTHORS_IMAGES_PER_S = (
    3.8  # the authors' code at batch 5 on a 2-core CPU (measured side by side with gfe-viz, see the README)
)
#: the command's encoders (``--encoder paper|fast``) and two variants of the paper's for comparison
ENCODERS = {
    **TRAINING_ENCODERS,
    "paper-batch": {**TRAINING_PAPER, "acceptance": "batch"},
    "paper-order2": {**TRAINING_PAPER, "order": 2},
}


class TimedTrainer(Trainer):
    """A Trainer that also times its encodes and counts their decoder calls."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.encode_time, self.decoder_calls, self.encodes = 0.0, 0, 0

    def encode(self, images, seed, record=False, settings=None):
        start = time.perf_counter()
        result = super().encode(images, seed, record, settings)
        self.encode_time += time.perf_counter() - start
        self.decoder_calls += int(result.stats.nfe.max())
        self.encodes += 1
        return result


def forward_backward_seconds(batch_size: int, repeats: int = 200) -> float:
    """Median time of one autograd decoder forward+backward with respect to z at ``batch_size``."""
    flow = GradientFlow(MLPDecoder(20, 784, (1, 28, 28)), "bce")
    z, x = torch.rand(batch_size, 20), torch.rand(batch_size, 1, 28, 28)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        flow.loss_and_grad(z, x)
        times.append(time.perf_counter() - start)
    return statistics.median(times[repeats // 10 :])


def train(encoder: str, batch_size: int, images: int, train_images: torch.Tensor) -> TimedTrainer:
    """Train a fresh seed-0 decoder on ``images`` images of the seed-0 stream with ``encoder``."""
    config = TrainConfig(
        method="gfe", batch_size=batch_size, seed=0, encoding=EncodeSettings(z0="uniform", tau=1e4, **ENCODERS[encoder])
    )
    trainer = TimedTrainer(initial_model("gfe", 20, seed=0), train_images, None, config, device="cpu")
    trainer.losses, trainer.nfes = [], []
    while trainer.images_seen < images:
        loss, nfe = trainer.train_step()
        trainer.losses.append(loss)
        trainer.nfes.append(nfe)
    return trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=400, help="training images per row")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[5, 16])
    parser.add_argument(
        "--encoders",
        nargs="+",
        choices=list(ENCODERS),
        default=["paper", "fast"],
        help="the first one is the reference of the 'x paper' column",
    )
    parser.add_argument(
        "--long-images",
        type=int,
        default=0,
        help="also train this many images at batch 16 per encoder and print the mean images/s",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    train_images = load_images("mnist").train
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; authors' reference: "
        f"{AUTHORS_IMAGES_PER_S} images/s at batch 5; {args.images} training images per row"
    )
    print(
        f"{'batch':>5} {'encoder':>12} {'img/s':>7} {'x ref':>6} {'x paper':>7} {'loss':>7} {'NFE/img':>8} "
        f"{'calls':>7} {'ms/call':>8} {'ms f+b':>7} {'overhead':>8} {'bound':>7}"
    )
    t_fb = {batch_size: forward_backward_seconds(batch_size) for batch_size in {*args.batch_sizes, 16}}
    for batch_size in args.batch_sizes:
        reference = None
        for encoder in args.encoders:
            reference = print_row(encoder, train(encoder, batch_size, args.images, train_images), t_fb, reference, 50)
    if args.long_images:
        print(f"over the first {args.long_images} training images at batch 16:")
        reference = None
        for encoder in args.encoders:
            reference = print_row(encoder, train(encoder, 16, args.long_images, train_images), t_fb, reference, 500)


def print_row(
    encoder: str, r: TimedTrainer, t_fb: dict[int, float], reference: float | None, loss_images: int
) -> float:
    """Print one table row for a finished run (training loss over its last ``loss_images`` images) and
    return the reference speed for the next rows."""
    batch_size = r.config.batch_size
    speed = r.images_seen / r.train_time
    reference = reference or speed
    calls = r.decoder_calls / r.encodes
    print(
        f"{batch_size:>5} {encoder:>12} {speed:>7.2f} {speed / AUTHORS_IMAGES_PER_S:>6.1f} "
        f"{speed / reference:>7.2f} {statistics.mean(r.losses[-max(1, loss_images // batch_size) :]):>7.4f} "
        f"{statistics.mean(r.nfes):>8.1f} {calls:>7.1f} {1e3 * r.encode_time / r.decoder_calls:>8.3f} "
        f"{1e3 * t_fb[batch_size]:>7.3f} {r.encode_time / (r.decoder_calls * t_fb[batch_size]):>8.2f} "
        f"{batch_size / (calls * t_fb[batch_size]):>7.1f}",
        flush=True,
    )
    return reference


if __name__ == "__main__":
    main()
