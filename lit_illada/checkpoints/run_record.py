"""The run record: what every run leaves in ``runs/<name>/``, W&B or not.

config.yaml (resolved; the latest start's), starts.jsonl (one line per start and resume:
its command-line overrides, the git commit, what changed), metrics.csv (Lightning's
CSVLogger), summary.json, checkpoints/, samples.jsonl and loss_curve.png. Writes go through a
temporary file and ``os.replace`` so a killed run never leaves half a summary behind.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from yaml import YAMLError


def is_result(key: str) -> bool:
    """A measured metric of summary.json (``val/nll``, ``train/tokens_per_s``, ``best/val/nll``),
    as opposed to the run's state (``status``, ``step``, ``error``, ...)."""
    return "/" in key


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
        self.starts_jsonl = self.root / "starts.jsonl"

    def create(self, exclusive: bool = False) -> bool:
        """Make the folder; True when this call made it (False: it was there already).
        ``exclusive``: a folder that is there already raises ``FileExistsError`` (a new run's
        name is claimed by the one ``mkdir`` that succeeds)."""
        self.root.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.root.mkdir()
            made = True
        except FileExistsError:
            if exclusive:
                raise
            made = False
        self.checkpoints.mkdir(exist_ok=True)
        return made

    def discard(self) -> None:
        """Remove a folder this run made and never trained in (start-up failed)."""
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def last_checkpoint(self) -> Path | None:
        path = self.checkpoints / "last.ckpt"
        return path if path.exists() else None

    def write_config(self, cfg: DictConfig) -> None:
        write_atomically(self.config_yaml, OmegaConf.to_yaml(cfg, resolve=True))

    def read_config(self) -> dict[str, Any] | None:
        """config.yaml as plain containers, or None when there is none (or it cannot be read)."""
        try:
            config = OmegaConf.to_container(OmegaConf.load(self.config_yaml))
        except (OSError, ValueError, YAMLError):
            return None
        return config if isinstance(config, dict) else None

    def append_start(self, entry: dict[str, Any]) -> None:
        """Add a line to starts.jsonl; the file is rewritten whole and renamed, so a kill leaves
        either the old lines or all of them (a start is rare; the file stays small)."""
        try:
            old = self.starts_jsonl.read_text()
        except FileNotFoundError:
            old = ""
        if old and not old.endswith("\n"):
            old += "\n"
        write_atomically(self.starts_jsonl, old + json.dumps(entry) + "\n")

    def read_starts(self) -> list[dict[str, Any]]:
        """starts.jsonl's entries, oldest first ([] without the file)."""
        try:
            lines = self.starts_jsonl.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]

    def write_summary(self, summary: dict[str, Any]) -> None:
        """Write summary.json, never with fewer results than it held: a metric the previous
        summary had and this one lacks (a resume that did not validate again) is kept."""
        old = self.read_summary()
        kept = {key: value for key, value in old.items() if is_result(key) and key not in summary}
        write_atomically(self.summary_json, json.dumps({**kept, **summary}, indent=2, sort_keys=True) + "\n")

    def read_summary(self) -> dict[str, Any]:
        """The summary, or {} when there is none (or it cannot be read: it is rewritten then)."""
        try:
            summary = json.loads(self.summary_json.read_text())
        except (OSError, ValueError):
            return {}
        return summary if isinstance(summary, dict) else {}

    def write_samples(self, rows: Iterable[dict[str, Any]]) -> None:
        write_atomically(self.samples_jsonl, "".join(json.dumps(row) + "\n" for row in rows))
