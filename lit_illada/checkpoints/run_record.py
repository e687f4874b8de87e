"""The run record: what every run leaves in ``runs/<name>/``, W&B or not.

config.yaml (resolved), metrics.csv (Lightning's CSVLogger), summary.json,
checkpoints/, samples.jsonl and loss_curve.png. Writes go through a temporary file and
``os.replace`` so a killed run never leaves half a summary behind.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def epoch_of(path: str | Path) -> int | None:
    """k for a file named ``epoch-<k>.<ext>`` (an SFT epoch's checkpoint or results), else None."""
    stem = Path(path).stem
    suffix = stem.removeprefix("epoch-")
    return int(suffix) if suffix != stem and suffix.isdigit() else None


def epoch_files(folder: str | Path, extension: str) -> list[tuple[int, Path]]:
    """(k, path) of every ``epoch-<k><extension>`` in ``folder``, in epoch order."""
    found = ((epoch_of(path), path) for path in Path(folder).glob(f"epoch-*{extension}"))
    return sorted((epoch, path) for epoch, path in found if epoch is not None)


def checkpoint_candidates(run_dir: str | Path) -> list[Path]:
    """Where a run directory's model is, in order of preference: the best, then the last checkpoint."""
    run_dir = Path(run_dir)
    return [run_dir / "checkpoints" / "best.ckpt", run_dir / "checkpoints" / "last.ckpt",
            run_dir / "best.ckpt", run_dir / "last.ckpt"]


class RunRecord:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.checkpoints = self.root / "checkpoints"
        self.metrics_csv = self.root / "metrics.csv"
        self.summary_json = self.root / "summary.json"
        self.samples_jsonl = self.root / "samples.jsonl"
        self.loss_curve_png = self.root / "loss_curve.png"
        self.config_yaml = self.root / "config.yaml"

    def create(self) -> RunRecord:
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        return self

    @property
    def last_checkpoint(self) -> Path | None:
        path = self.checkpoints / "last.ckpt"
        return path if path.exists() else None

    def write_config(self, cfg: DictConfig) -> None:
        write_atomically(self.config_yaml, OmegaConf.to_yaml(cfg, resolve=True))

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_atomically(self.summary_json, json.dumps(summary, indent=2, sort_keys=True) + "\n")

    def read_summary(self) -> dict[str, Any]:
        return json.loads(self.summary_json.read_text()) if self.summary_json.exists() else {}

    def write_samples(self, rows: Iterable[dict[str, Any]]) -> None:
        write_atomically(self.samples_jsonl, "".join(json.dumps(row) + "\n" for row in rows))
