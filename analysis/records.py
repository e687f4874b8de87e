"""Read local run records (``runs/<name>/``) into pandas and plain dicts."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from lit_illada.checkpoints.run_record import epoch_files

# Any of these marks a folder as a run record. An evaluate-sweep trial holds results.json only.
RUN_FILES = ("config.yaml", "summary.json", "results.json", "metrics.csv")


class UnreadableRecord(ValueError):
    """A run record file that exists but cannot be read (cut short, mixed, not text): names the file."""


def load_metrics(run_dir: str | Path) -> pd.DataFrame:
    """The run's metrics.csv, one row per logged step, rows of the same step merged."""
    path = Path(run_dir) / "metrics.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: was the run logged with logger=none?")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        reason = str(err).splitlines()[0].removeprefix("Error tokenizing data. C error: ")
        raise UnreadableRecord(f"{path}: not a readable metrics.csv ({reason})") from None
    if "step" not in frame:
        raise UnreadableRecord(f"{path}: not a readable metrics.csv (no step column)")
    # Lightning writes train and val metrics of one step on separate rows; merge them.
    return frame.groupby("step", as_index=False).first()


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and any((path / name).is_file() for name in RUN_FILES)


def read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def read_config(run_dir: Path) -> dict | None:
    """config.yaml as a plain dict (OmegaConf reads it as it was written: 1e-4 stays a float)."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        return None
    from omegaconf import OmegaConf  # noqa: PLC0415

    return OmegaConf.to_container(OmegaConf.load(path), resolve=False)


def read_results(path: Path) -> dict | None:
    """A results.json; files older than the "config" and "epoch" keys get them empty."""
    results = read_json(path)
    if results is None:
        return None
    results.setdefault("config", {})
    results.setdefault("epoch", None)
    results.setdefault("tasks", {})
    return results


def read_epoch_results(run_dir: Path) -> list[dict]:
    """``results/epoch-<k>.json`` of an SFT-epoch run, in epoch order; "epoch" from the name if absent."""
    found = []
    for epoch, path in epoch_files(run_dir / "results", ".json"):
        results = read_results(path)
        results["epoch"] = results["epoch"] if results["epoch"] is not None else epoch
        found.append(results)
    return sorted(found, key=lambda r: r["epoch"])


def checkpoint_run_dir(ckpt: str) -> Path:
    """The run folder a checkpoint belongs to: ``runs/x``, ``runs/x/checkpoints/epoch-2.ckpt`` -> runs/x."""
    path = Path(ckpt)
    if "checkpoints" in path.parts:
        parts = path.parts
        return Path(*parts[: len(parts) - 1 - parts[::-1].index("checkpoints")])
    return path.parent if path.suffix == ".ckpt" else path
