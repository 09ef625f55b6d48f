"""AMD's loop on notebook 02's lab batch: one encode with and without ``record=True``.

Encodes the lab's 16 MNIST validation images with the demo decoder (``train_demo_model("gfe",
latent_dim=2, n_images=1024)``) as the lab does, ``encode(decoder, x, solver="amd", amd=AMD_MNIST,
tau=1e4, record=...)``, and prints the median time of an encode and per attempt. ``--baseline
DIR`` times the ``gfe_viz/amd.py`` of another checkout (e.g. a ``git worktree`` of main) in the
same run, alternating with this one, so the ratio holds on a busy machine; its flows and results
modules are this checkout's.

    GFE_DATA_DIR=../shared/data python benchmarks/bench_amd_lab.py --baseline ../gfe-main
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import torch

import gfe_viz.solvers
from gfe_viz import AMD_MNIST, amd, encode
from gfe_viz.data import load_images
from gfe_viz.demo_models import train_demo_model


def load_amd(checkout: Path):
    """The ``gfe_viz/amd.py`` of ``checkout`` as a module of this ``gfe_viz`` package."""
    spec = importlib.util.spec_from_file_location("gfe_viz._amd_baseline", checkout / "gfe_viz" / "amd.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, help="another checkout whose gfe_viz/amd.py to time alongside")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of every variant")
    parser.add_argument("--encodes", type=int, default=5, help="encodes per variant and round")
    args = parser.parse_args()
    torch.set_num_threads(1)
    decoder, _ = train_demo_model("gfe", latent_dim=2, n_images=1024)
    x = load_images("mnist", n_val=200).val[:16]
    modules = {"this": amd, **({"baseline": load_amd(args.baseline)} if args.baseline else {})}
    attempts = int(encode(decoder, x, solver="amd", amd=AMD_MNIST, tau=1e4).stats.nfe.max()) - 1
    times = {(name, record): [] for name in modules for record in (False, True)}
    for _ in range(args.repeats):
        for (name, record), seconds in times.items():
            gfe_viz.solvers.solve_amd = modules[name].solve_amd
            for _ in range(args.encodes):
                start = time.perf_counter()
                encode(decoder, x, solver="amd", amd=AMD_MNIST, tau=1e4, record=record)
                seconds.append(time.perf_counter() - start)
    print(f"torch {torch.__version__}, 1 thread; {attempts} attempts per encode")
    for (name, record), seconds in times.items():
        median = statistics.median(seconds)
        ratio = median / statistics.median(times[("baseline", record)]) if args.baseline else 1.0
        print(
            f"{name:>8s} record={record!s:5s}  {1e3 * median:7.1f} ms per encode  "
            f"{1e6 * median / attempts:6.0f} us per attempt  x baseline {ratio:.2f}"
        )


if __name__ == "__main__":
    main()
