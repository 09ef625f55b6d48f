"""Experiments that reproduce the paper's claims, with resumable runs and result files."""

from .data_efficiency import DataEfficiencySettings, RunOutput, run_data_efficiency
from .plots import plot_data_efficiency
from .results_io import read_rows
from .summary import format_summary, seed_curve, summarise

__all__ = [
    "DataEfficiencySettings",
    "RunOutput",
    "format_summary",
    "plot_data_efficiency",
    "read_rows",
    "run_data_efficiency",
    "seed_curve",
    "summarise",
]
