"""Experiment loggers for a run: the run record's CSV and, optionally, Weights & Biases
(with the run's checkpoints as W&B artifacts when ``logger.wandb.log_model`` asks for them)."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import Logger, WandbLogger  # WandbLogger imports wandb only when used
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from lit_illada.config.wandb_settings import (
    component_tags,
    log_model_choice,
    stable_run_id,
    wandb_init_kwargs,
)


class MetricsCSVLogger(Logger):
    """The run record's metrics.csv: one row per logged step, appended across resumes.

    Lightning's CSVLogger deletes an existing metrics.csv when it starts, which would wipe
    the history of a resumed run; this one keeps it and widens the header when new metric
    names appear.
    """

    def __init__(self, path: str | Path, flush_every: int = 50, flush_seconds: float = 10.0) -> None:
        super().__init__()
        self.path = Path(path)
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        self._flushed_at = time.monotonic()
        self._rows: list[dict[str, Any]] = []
        self._columns: list[str] = self._existing_columns()
        # A resumed run replays the steps between its checkpoint and the kill: the first row it
        # logs tells where it resumed, and the old rows from that step on are dropped then.
        self._trim_on_first_row = self.path.exists()

    @property
    def name(self) -> str:
        return "metrics_csv"

    @property
    def version(self) -> str:
        return ""

    @property
    def save_dir(self) -> str:
        return str(self.path.parent)

    def _existing_columns(self) -> list[str]:
        if not self.path.exists():
            return []
        with self.path.open(newline="") as handle:
            return next(csv.reader(handle), [])

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass  # the resolved config is written to config.yaml

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        row = {"step": step, **{k: float(v) for k, v in metrics.items() if k != "epoch"}}
        if self._trim_on_first_row and step is not None:
            self._drop_rows_from(step)
        self._trim_on_first_row = False
        self._rows.append(row)
        # Validation rows go out at once: sweeps prune on them and dashboards plot them.
        stale = time.monotonic() - self._flushed_at > self.flush_seconds
        if len(self._rows) >= self.flush_every or stale or any(key.startswith("val/") for key in row):
            self.save()

    @rank_zero_only
    def save(self) -> None:
        if not self._rows:
            return
        new = [key for row in self._rows for key in row if key not in self._columns]
        columns = self._columns + sorted(set(new), key=new.index)
        if columns != self._columns and self.path.exists():
            with self.path.open(newline="") as handle:
                old_rows = list(csv.DictReader(handle))
            self._write(columns, old_rows + self._rows, mode="w")
        else:
            self._write(columns, self._rows, mode="a" if self.path.exists() else "w")
        self._columns = columns
        self._rows = []
        self._flushed_at = time.monotonic()

    def _drop_rows_from(self, step: int) -> None:
        with self.path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        kept = [row for row in rows if row.get("step") in (None, "") or int(float(row["step"])) < step]
        if len(kept) != len(rows):
            self._write(self._columns, kept, mode="w")

    def _write(self, columns: list[str], rows: list[dict[str, Any]], mode: str) -> None:
        with self.path.open(mode, newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            if mode == "w":
                writer.writeheader()
            writer.writerows(rows)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self.save()


def build_loggers(cfg: DictConfig, name: str, run_dir: Path, job_type: str) -> list[Logger]:
    loggers: list[Logger] = []
    if cfg.logger.get("csv", False):
        loggers.append(MetricsCSVLogger(run_dir / "metrics.csv"))
    wandb_cfg = cfg.logger.get("wandb")
    if wandb_cfg is not None:
        loggers.append(_wandb_logger(wandb_cfg, cfg, name, run_dir, job_type))
    return loggers


def _wandb_logger(wandb_cfg: DictConfig, cfg: DictConfig, name: str, run_dir: Path, job_type: str) -> Logger:
    kwargs = wandb_init_kwargs(
        wandb_cfg, name=name, run_id=stable_run_id(name), job_type=job_type, directory=run_dir,
        tags=component_tags(cfg),
    )
    logger = CheckpointArtifactsWandbLogger(
        save_dir=kwargs.pop("dir"),  # Lightning's name for wandb.init's dir
        upload=log_model_choice(wandb_cfg),
        checkpoints=run_dir / "checkpoints",
        **kwargs,
    )
    logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    return logger


class CheckpointArtifactsWandbLogger(WandbLogger):
    """Lightning's WandbLogger that uploads checkpoints as W&B ``model`` artifacts
    (``model-<run id>``, as Lightning names them) per ``logger.wandb.log_model``:

    - ``best``: best.ckpt once training ends (Lightning's ``log_model=True``: its
      ModelCheckpoint's files at the end, and best.ckpt is this project's only one);
    - ``all``: every new best.ckpt as it is written (Lightning's ``log_model="all"``), then
      the final checkpoint;
    - ``last``: the final checkpoint (last.ckpt: the whole training state) once training ends;
      Lightning has no such mode.

    Only a run that ends normally uploads at the end: a preempted or failed one leaves that to
    the run that resumes it. Lightning's own ``log_model`` is off because it uploads with
    ``add_file``, which refuses the sharded (DCP) checkpoint folders of ``trainer=fsdp``.
    """

    def __init__(self, *, upload: str | None, checkpoints: Path, **kwargs: Any) -> None:
        super().__init__(log_model=False, **kwargs)
        self.upload = upload
        self.checkpoints = checkpoints

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: ModelCheckpoint) -> None:
        # Lightning calls this after each ModelCheckpoint save: here a new lowest val/nll.
        if self.upload == "all" and checkpoint_callback.best_model_path:
            self._log_checkpoint(Path(checkpoint_callback.best_model_path), ["latest", "best"])

    @rank_zero_only
    def finalize(self, status: str) -> None:
        super().finalize(status)
        if status != "success" or self.upload is None or self._experiment is None:
            return
        if self.upload == "best":
            self._log_checkpoint(self.checkpoints / "best.ckpt", ["latest", "best"])
        else:  # last, all
            self._log_checkpoint(self.checkpoints / "last.ckpt", ["latest", "last"])

    def _log_checkpoint(self, path: Path, aliases: list[str]) -> None:
        import wandb  # noqa: PLC0415 - WandbLogger's experiment has imported it already

        if not path.exists():  # e.g. best.ckpt of a run that never validated
            return
        target = path.resolve()  # last.ckpt links the newest step-<n>.ckpt
        artifact = wandb.Artifact(
            name=f"model-{self.experiment.id}", type="model",
            metadata={"original_filename": target.name},
        )
        if target.is_dir():  # a sharded (DCP) checkpoint folder
            artifact.add_dir(str(target), name="model.ckpt")
        else:
            artifact.add_file(str(target), name="model.ckpt")
        self.experiment.log_artifact(artifact, aliases=aliases)


def log_samples_table(loggers: list[Logger], samples: list[dict[str, Any]]) -> None:
    """The run's sample generations as a W&B table (they are in samples.jsonl either way)."""
    if not samples:
        return
    columns = list(samples[0])
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            rows = [[row[c] for c in columns] for row in samples]
            logger.log_table(key="samples", columns=columns, data=rows)


def finish_loggers(loggers: list[Logger]) -> None:
    """Close the W&B run (Lightning finalizes loggers but never calls wandb.finish), so a
    sweep's next trial starts a fresh one."""
    for logger in loggers:
        if isinstance(logger, WandbLogger) and logger._experiment is not None:
            logger.experiment.finish()
