"""Turns run records, offline and online W&B runs and Optuna studies into tables and figures.

    from analysis import load_runs, load_epochs, load_history
    from analysis.figures import ablation, loss_curves, quality_vs_nfe, ...

See analysis/sources.py for the sources and columns, analysis/figures.py for the figures.
"""

from analysis.records import load_metrics
from analysis.sources import load_epochs, load_history, load_runs

__all__ = ["load_epochs", "load_history", "load_metrics", "load_runs"]
