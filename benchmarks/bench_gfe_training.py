"""GFE-AMD decoder training speed: batch versus per-sample acceptance, at the authors' MNIST config.

Prints, for each batch size and acceptance mode: training images/s, the training loss over the
last batches, mean encoder NFE per sample, decoder calls per encode, and the solver overhead
ratio = encode time / (decoder calls x time of one decoder forward+backward at the same batch
size, measured once per batch size). Every figure comes from this one run, so ratios between
rows are comparable.

    GFE_DATA_DIR=../shared/data python benchmarks/bench_gfe_training.py --images 360
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from gfe_viz import AMD_MNIST, MLPDecoder
from gfe_viz.data import load_images
from gfe_viz.flows import GradientFlow
from gfe_viz.training import EncodeSettings, TrainConfig, Trainer

AUTHORS_IMAGES_PER_S = 3.8  # the authors' code at batch 5 on a 2-core CPU (gfe-method.md, section 5)


class TimedTrainer(Trainer):
    """A Trainer that also times its encodes and counts their decoder calls."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.encode_time, self.decoder_calls, self.encodes = 0.0, 0, 0

    def encode(self, images, seed, record=False):
        start = time.perf_counter()
        result = super().encode(images, seed, record)
        self.encode_time += time.perf_counter() - start
        self.decoder_calls += int(result.stats.nfe.max())
        self.encodes += 1
        return result


def forward_backward_seconds(decoder: torch.nn.Module, batch_size: int, repeats: int = 200) -> float:
    """Median time of one decoder forward+backward with respect to z at ``batch_size``."""
    flow = GradientFlow(decoder, "bce")
    z, x = torch.rand(batch_size, decoder.latent_dim), torch.rand(batch_size, 1, 28, 28)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        flow.loss_and_grad(z, x)
        times.append(time.perf_counter() - start)
    return statistics.median(times[repeats // 10:])


def run(batch_size: int, acceptance: str, order: int, images: int, train: torch.Tensor, t_fb: float) -> dict:
    torch.manual_seed(0)
    decoder = MLPDecoder(20, 784, (1, 28, 28))
    config = TrainConfig(method="gfe", batch_size=batch_size, seed=0,
                         encoding=EncodeSettings(acceptance=acceptance, order=order, z0="uniform", tau=1e4,
                                                 amd=AMD_MNIST))
    trainer = TimedTrainer(decoder, train, None, config, device="cpu")
    losses, nfes = [], []
    while trainer.images_seen < images:
        loss, nfe = trainer.train_step()
        losses.append(loss)
        nfes.append(nfe)
    return {"batch": batch_size, "acceptance": acceptance, "order": order,
            "images_per_s": trainer.images_seen / trainer.train_time,
            "final_loss": statistics.mean(losses[-max(1, 50 // batch_size):]),
            "nfe_per_sample": statistics.mean(nfes), "calls_per_encode": trainer.decoder_calls / trainer.encodes,
            "ms_per_call": 1e3 * trainer.encode_time / trainer.decoder_calls, "ms_fwd_bwd": 1e3 * t_fb,
            "overhead": trainer.encode_time / (trainer.decoder_calls * t_fb)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=360, help="training images per run at batch 5")
    parser.add_argument("--large-batch", type=int, default=64, help="the second batch size to report")
    parser.add_argument("--large-images", type=int, default=640, help="training images per run at the large batch")
    parser.add_argument("--orders", type=int, nargs="+", default=[1], choices=[1, 2])
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    train = load_images("mnist").train
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; authors' reference: "
          f"{AUTHORS_IMAGES_PER_S} images/s at batch 5")
    header = (f"{'batch':>5} {'acceptance':>10} {'order':>5} {'img/s':>7} {'x ref':>6} {'loss':>7} {'NFE/smp':>8} "
              f"{'calls':>7} {'ms/call':>8} {'ms f+b':>7} {'overhead':>8}")
    print(header)
    for batch_size, images in ((5, args.images), (args.large_batch, args.large_images)):
        # one denominator per batch size, shared by its rows (timing does not depend on the weights)
        t_fb = forward_backward_seconds(MLPDecoder(20, 784, (1, 28, 28)), batch_size)
        for order in args.orders:
            for acceptance in ("batch", "per_sample"):
                r = run(batch_size, acceptance, order, images, train, t_fb)
                print(f"{r['batch']:>5} {r['acceptance']:>10} {r['order']:>5} {r['images_per_s']:>7.2f} "
                      f"{r['images_per_s'] / AUTHORS_IMAGES_PER_S:>6.1f} {r['final_loss']:>7.4f} "
                      f"{r['nfe_per_sample']:>8.1f} {r['calls_per_encode']:>7.1f} {r['ms_per_call']:>8.3f} "
                      f"{r['ms_fwd_bwd']:>7.3f} {r['overhead']:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
