"""Read local run records (``runs/<name>/``) into pandas."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def load_metrics(run_dir: str | Path) -> pd.DataFrame:
    """The run's metrics.csv, one row per logged step, rows of the same step merged."""
    path = Path(run_dir) / "metrics.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: was the run logged with logger=none?")
    frame = pd.read_csv(path)
    # Lightning writes train and val metrics of one step on separate rows; merge them.
    return frame.groupby("step", as_index=False).first()
