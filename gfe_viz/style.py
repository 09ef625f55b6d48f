"""The lessons' colours and labels, in one place: a method, solver, flow or class looks the same in every figure.

The colours are matplotlib's ``tab10`` (``TAB10``) and, for the truncation lesson's many
thresholds, plotly's default qualitative palette.
"""

TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
BLUE, ORANGE, GREEN, RED, PURPLE = TAB10[:5]

#: the data-efficiency methods: the command's matplotlib figure and the notebooks' plotly figures
METHOD_COLORS = {"ae": ORANGE, "gfe": BLUE, "gfe_full": GREEN, "gfe_fast": RED}
METHOD_LABELS = {
    "ae": "AE",
    "gfe": "GFE (AMD)",
    "gfe_full": "GFE (AMD, full adjoint)",
    "gfe_fast": "GFE (AMD, trained with TRAINING_FAST)",
}
SOLVER_COLORS = {"amd": BLUE, "euler": RED, "rk4": GREEN, "dopri5": PURPLE}
#: paths drawn on a loss landscape (the first, white, on the dark heat map)
PATH_COLORS = ("#ffffff", ORANGE, GREEN, RED)
#: one colour per digit or clothing class
CLASS_COLORS = TAB10
#: the truncation lesson's data clusters and thresholds
CLUSTER_COLORS = (BLUE, RED, GREEN, PURPLE)
THRESHOLD_COLORS = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692", "#b6e880")
