"""Turns run records (and, later, W&B runs and Optuna studies) into tables and figures."""

from analysis.records import load_metrics

__all__ = ["load_metrics"]
