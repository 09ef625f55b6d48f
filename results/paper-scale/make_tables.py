"""The paper-scale comparison: tables (one per dataset) and figure from the run folders named below.

Batch 16, latent 20, 1,000 validation images, about 4 log-spaced checkpoints per decade. The AE
and GFE units of one seed start from the same decoder and see the same image stream, so curves
from different folders of the same seed continue one another. A folder still in progress (no
``completed`` time in its run.json) is read as far as it got and marked so. Run from the
repository root:

    python results/paper-scale/make_tables.py [FOLDER ...]

FOLDER: run folders (default: every folder here, refused as below when two of them hold the
same seed of a method, as the AE 10M and AE 1M folders do). Folders may share a method when they hold
other seeds of it (e.g. seed 0 of a long run and seeds 1 and 2 of a shorter one on the same
checkpoint grid: a seed-mean curve keeps the checkpoints every seed reached); two folders with the
same method and seed would mix two runs in one curve, so they are refused.
"""

import json
import sys
from pathlib import Path

from gfe_viz.experiments import plot_data_efficiency, read_rows, summarise
from gfe_viz.experiments.summary import images_to_reach, seed_curve

HERE = Path(__file__).parent
FOLDERS = [Path(f) for f in sys.argv[1:]] or sorted(p.parent for p in HERE.glob("*/results.csv"))
TARGETS = {  # validation BCE levels spread over each dataset's whole curve
    "mnist": [0.25, 0.2, 0.15, 0.12, 0.1, 0.095, 0.09, 0.085, 0.08, 0.075, 0.07],
    "fashionmnist": [0.4, 0.35, 0.32, 0.3, 0.29, 0.285, 0.28, 0.275, 0.2725, 0.271, 0.27],
}


rows, lines, seen = [], [], {}
for folder in FOLDERS:
    run = json.loads((folder / "run.json").read_text())
    mine = read_rows(folder / "results.csv")
    for key in sorted({(r["dataset"], r["method"], r["seed"]) for r in mine}):
        if key in seen:
            raise SystemExit(f"{folder} and {seen[key]} both hold {' '.join(map(str, key))}: name one folder per seed")
        seen[key] = folder
    rows += mine
    times = [i["started"] for i in run["invocations"]]
    state = (
        f"finished {run['completed']}"
        if run.get("completed")
        else f"stopped as planned at {run['paused_at']['images']:,} images"
        if run.get("paused_at")
        else "IN PROGRESS"
    )
    for dataset, method in sorted({(r["dataset"], r["method"]) for r in mine}):
        curve = seed_curve(mine, dataset, method)
        lines.append(
            f"- `{folder.name}` ({state}; started {times[0]}): {dataset} {method}, seeds {list(curve.seeds)}, "
            f"{curve.images_seen[-1]:,} images, final validation BCE {curve.mean[-1]:.4f}, "
            f"{curve.wall_time[-1] / 60:.1f} min of training"
        )
print("\n".join(lines), "\n")


def cell(row, method):
    """Images to reach the row's target: first checkpoint at or below it, its bracket and the seed spread."""
    images, above = row["methods"].get(method, (None, None))
    if images is None:
        return "not reached"
    text = f"{images:,} ({above:,} to {images:,})"
    per_seed = row["seeds"].get(method, {})
    if len(per_seed) > 1:  # the seed spread: each seed's own first checkpoint at or below the target
        crossings = sorted(n for n in per_seed.values() if n is not None)
        missed = len(per_seed) - len(crossings)
        text += f"; seeds {crossings[0]:,} to {crossings[-1]:,}" + (f", {missed} not reached" if missed else "")
    return text


def ratio_cell(row):
    """AE images / GFE images at the row's target, with the range the checkpoint brackets allow."""
    ratio = row["ratio"].get("gfe")
    if ratio is None:
        return "-"
    return f"{ratio[0]:.1f} ({ratio[1]:.1f} to " + ("unbounded" if ratio[2] is None else f"{ratio[2]:.1f}") + ")"


for dataset in sorted({r["dataset"] for r in rows}):
    print(f"{dataset}\n\n| target BCE | AE images | GFE images | ratio AE / GFE |\n| --- | --- | --- | --- |")
    for row in images_to_reach(rows, dataset, TARGETS[dataset]):
        print(f"| {row['target']} | {cell(row, 'ae')} | {cell(row, 'gfe')} | {ratio_cell(row)} |")
    print()
plot_data_efficiency(rows, summarise(rows), HERE / "data_efficiency.png")
