"""GFE on a device: encode throughput of the AMD loops against the decoder's own, and training speed.

For each batch size, on MNIST images with the MNIST decoder (d = 20) and the paper's encoder
(AMD_MNIST, per-sample acceptance, z0 uniform), prints per AMD loop: encode images/s, decoder
calls per encode, ms per call, and the ratio to the roofline = images/s the solver would reach
if an attempt cost nothing beyond one decoder forward+backward (the fused loss and latent
gradient, timed alone at that batch); calls are the per-attempt loop's (the chunked loops run on
to the end of the chunk in which the last sample finishes). Loops: ``per-attempt`` (the host checks after every
attempt), ``chunked`` (every ``--check-every`` attempts) and, on CUDA, ``graph`` (the chunk
captured as a CUDA graph). ``x roof`` above 1 means finished samples left the working set, so
later attempts cost less than a full-batch evaluation. Then GFE and AE training images/s at the ``--train-batch-sizes``.
Every figure comes from this one run, so ratios between rows are comparable.

    GFE_DATA_DIR=../shared/data python benchmarks/bench_gpu.py --device cuda
    GFE_DATA_DIR=../shared/data python benchmarks/bench_gpu.py --device cpu --quick   # dry run, < 1 minute
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from gfe_viz import TRAINING_PAPER, encode
from gfe_viz.data import load_images
from gfe_viz.device import resolve_device
from gfe_viz.flows import GradientFlow
from gfe_viz.models import initial_model
from gfe_viz.training import EncodeSettings, TrainConfig, Trainer


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeats: int) -> tuple[float, object]:
    """Median seconds of ``fn()`` over ``repeats`` calls after one warm-up call, and its last result."""
    result = fn()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        result = fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def loops(device: torch.device, check_every: int) -> dict[str, dict]:
    chosen = {"per-attempt": {}, "chunked": {"check_every": check_every}}
    if device.type == "cuda":
        chosen["graph"] = {"check_every": check_every, "cuda_graph": True}
    return chosen


def bench_encode(
    images: torch.Tensor, batch: int, tau: float, check_every: int, repeats: int, device: torch.device
) -> None:
    decoder = initial_model("gfe", 20, seed=0).to(device)
    x = images[:batch].to(device)
    if x.shape[0] < batch:
        x = x.repeat((batch + x.shape[0] - 1) // x.shape[0], 1, 1, 1)[:batch]
    flow = GradientFlow(decoder, "bce", gradient="fused")
    z = torch.rand(batch, 20, device=device)
    t_fb, _ = timed(lambda: flow.loss_and_grad(z, x), device, max(20, repeats * 10))
    for name, loop in loops(device, check_every).items():

        def run(loop=loop):
            generator = torch.Generator().manual_seed(0)
            return encode(
                decoder,
                x,
                z0="uniform",
                tau=tau,
                generator=generator,
                gradient="fused",
                **loop,
                **{k: v for k, v in TRAINING_PAPER.items() if k != "solver"},
            )

        seconds, result = timed(run, device, repeats)
        calls = int(result.stats.nfe.max())
        roofline = batch / (calls * t_fb)
        print(
            f"{batch:>6} {name:>12} {batch / seconds:>10.1f} {calls:>7} {1e3 * seconds / calls:>8.3f} "
            f"{1e3 * t_fb:>7.3f} {roofline:>10.1f} {batch / seconds / roofline:>7.2f}",
            flush=True,
        )


def bench_training(
    images: torch.Tensor, batch: int, n_images: int, tau: float, check_every: int, device: torch.device
) -> None:
    rows = {"ae": ("ae", {})}
    for name, loop in loops(device, check_every).items():
        rows[f"gfe {name}"] = ("gfe", loop)
    for name, (method, loop) in rows.items():
        config = TrainConfig(
            method=method,
            batch_size=batch,
            seed=0,
            encoding=EncodeSettings(z0="uniform", tau=tau, **{**TRAINING_PAPER, "gradient": "auto"}),
        )
        trainer = Trainer(initial_model(method, 20, seed=0), images, None, config, device=device, **loop)
        trainer.train_step()  # warm-up (and graph capture paths)
        synchronize(device)
        start, seen = time.perf_counter(), trainer.images_seen
        losses = [trainer.train_step()[0] for _ in range(max(1, n_images // batch))]
        synchronize(device)
        speed = (trainer.images_seen - seen) / (time.perf_counter() - start)
        print(f"{batch:>6} {name:>16} {speed:>10.1f} {statistics.mean(losses):>8.4f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 256, 4096])
    parser.add_argument("--train-batch-sizes", type=int, nargs="+", default=[16, 256])
    parser.add_argument("--train-images", type=int, default=2048, help="training images timed per row")
    parser.add_argument("--tau", type=float, default=1e4, help="integration horizon of every encode")
    parser.add_argument("--check-every", type=int, default=16, help="attempts per chunk of the chunked loops")
    parser.add_argument("--repeats", type=int, default=3, help="timed encodes per row (the median is shown)")
    parser.add_argument(
        "--quick", action="store_true", help="a dry run: batches 16 and 128, tau 1000, 128 training images, 1 repeat"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.quick:
        args.batch_sizes, args.train_batch_sizes = [16, 128], [16, 128]
        args.tau, args.train_images, args.repeats = 1e3, 128, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    images = load_images("mnist").train
    print(f"torch {torch.__version__} on {device} ({name}); tau {args.tau:g}, chunks of {args.check_every} attempts")
    print("encode (paper's settings, fused gradient): roofline = batch / (calls x one forward+backward)")
    print(
        f"{'batch':>6} {'loop':>12} {'img/s':>10} {'calls':>7} {'ms/call':>8} {'ms f+b':>7} {'roofline':>10} "
        f"{'x roof':>7}"
    )
    for batch in args.batch_sizes:
        bench_encode(images, batch, args.tau, args.check_every, args.repeats, device)
    print(f"training ({args.train_images} images per row after one warm-up step)")
    print(f"{'batch':>6} {'method':>16} {'img/s':>10} {'loss':>8}")
    for batch in args.train_batch_sizes:
        bench_training(images, batch, args.train_images, args.tau, args.check_every, device)


if __name__ == "__main__":
    main()
