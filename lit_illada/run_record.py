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


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


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
        _atomic_write(self.config_yaml, OmegaConf.to_yaml(cfg, resolve=True))

    def write_summary(self, summary: dict[str, Any]) -> None:
        _atomic_write(self.summary_json, json.dumps(summary, indent=2, sort_keys=True) + "\n")

    def read_summary(self) -> dict[str, Any]:
        return json.loads(self.summary_json.read_text()) if self.summary_json.exists() else {}

    def write_samples(self, rows: Iterable[dict[str, Any]]) -> None:
        _atomic_write(self.samples_jsonl, "".join(json.dumps(row) + "\n" for row in rows))
