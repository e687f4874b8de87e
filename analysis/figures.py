"""Figures drawn from run records. matplotlib only, Agg backend (no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

LOSS_CURVES = (("train/nll", "train NLL bound"), ("val/nll", "val NLL bound"))


def plot_loss_curves(metrics: pd.DataFrame, out: str | Path, title: str = "") -> Path:
    """Training and validation NLL bound (nats/token) against the optimizer step."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for column, label in LOSS_CURVES:
        if column in metrics:
            rows = metrics[["step", column]].dropna()
            style = {"marker": "o"} if column.startswith("val") else {"alpha": 0.7}
            ax.plot(rows["step"], rows[column], label=label, **style)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("NLL bound (nats / token)")
    ax.set_title(title or "loss curve")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out)
    plt.close(fig)
    return out
