"""The fast training preset against the paper's encoder: table and figure from the run folders here.

Each dataset has folders made by ``gfe-viz data-efficiency`` with the same seeds, batch, images
and validation set: ``<dataset>-paper`` (``--encoder paper``, also the AE), ``<dataset>-fast``
(``--encoder fast``, the present ``TRAINING_FAST``) and ``<dataset>-fast-v1`` (the preset's first
version, grow 1.5, shrink 0.5, convergence test from 0.02 tau with threshold 1e-4; each run.json
records the settings it trained with). All validate with the paper's encoder. Run from the
repository root:

    python results/fast-vs-paper/make_comparison.py
"""

from pathlib import Path

from gfe_viz.experiments import plot_data_efficiency, read_rows
from gfe_viz.experiments.summary import compare_curves

HERE = Path(__file__).parent
rows, lines = (
    [],
    [
        "| dataset | images | paper encoder | fast preset | fast - paper (paired) | equal or lower | "
        "first version | equal or lower |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ],
)
for dataset in ("mnist", "fashionmnist"):
    paper = read_rows(HERE / f"{dataset}-paper" / "results.csv")
    fast = [{**r, "method": "gfe_fast"} for r in read_rows(HERE / f"{dataset}-fast" / "results.csv")]
    first = [{**r, "method": "gfe_fast_v1"} for r in read_rows(HERE / f"{dataset}-fast-v1" / "results.csv")]
    rows += paper + fast
    old = {c["images_seen"]: c for c in compare_curves(paper + first, dataset, "gfe", "gfe_fast_v1")}
    for c in compare_curves(paper + fast, dataset, "gfe", "gfe_fast"):
        v1 = old[c["images_seen"]]
        lines.append(
            f"| {dataset} | {c['images_seen']:,} | {c['reference_mean']:.4f} ± {c['reference_std']:.4f} | "
            f"{c['candidate_mean']:.4f} ± {c['candidate_std']:.4f} | {c['paired_difference']:+.4f} | "
            f"{'yes' if c['equal_or_lower'] else 'NO'} | {v1['candidate_mean']:.4f} ± "
            f"{v1['candidate_std']:.4f} | {'yes' if v1['equal_or_lower'] else 'NO'} |"
        )
plot_data_efficiency(rows, path=HERE / "fast_vs_paper.png")
print("\n".join(lines))
