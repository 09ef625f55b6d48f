"""Rebuild results/data_efficiency.png: the AE curve of the 100,000-image AE runs against the GFE
curve of the 3,000-image runs (both streams start from the same weights and images), with the
target set to GFE's final seed-mean validation loss. Run from the repository root:

    python results/make_figure.py
"""

from gfe_viz.experiments import format_summary, plot_data_efficiency, read_rows, summarise
from gfe_viz.experiments.summary import seed_curve

rows, summary = [], {}
for dataset in ("mnist", "fashionmnist"):
    ae = read_rows(f"results/{dataset}-ae-100000img-3seeds/results.csv")
    gfe = [r for r in read_rows(f"results/{dataset}-3000img-3seeds/results.csv") if r["method"] == "gfe"]
    rows += ae + gfe
    summary.update(summarise(ae + gfe, target=float(seed_curve(gfe, dataset, "gfe").mean[-1])))
plot_data_efficiency(rows, summary, "results/data_efficiency.png")
print(format_summary(summary), end="")
