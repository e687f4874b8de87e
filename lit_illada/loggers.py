"""Experiment loggers for a run: the run record's CSV and, optionally, Weights & Biases."""

from __future__ import annotations

import hashlib
import netrc
import os
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger, Logger
from omegaconf import DictConfig, OmegaConf

WANDB_MODES = ("auto", "online", "offline", "disabled")


def wandb_key_configured() -> bool:
    """True when W&B could log online: an API key in the environment or in ~/.netrc."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def stable_run_id(name: str) -> str:
    """A W&B run id derived from the run name, so a resumed run continues the same W&B run."""
    return hashlib.sha1(name.encode()).hexdigest()[:16]


def build_loggers(cfg: DictConfig, name: str, run_dir: Path, job_type: str) -> list[Logger]:
    loggers: list[Logger] = []
    if cfg.logger.get("csv", False):
        # name="" and version="" put metrics.csv directly in the run directory.
        loggers.append(CSVLogger(save_dir=str(run_dir), name="", version=""))
    wandb_cfg = cfg.logger.get("wandb")
    if wandb_cfg is not None:
        loggers.append(_wandb_logger(wandb_cfg, cfg, name, run_dir, job_type))
    return loggers


def _wandb_logger(wandb_cfg: DictConfig, cfg: DictConfig, name: str, run_dir: Path, job_type: str) -> Logger:
    from lightning.pytorch.loggers import WandbLogger  # noqa: PLC0415 - wandb import is slow

    mode = wandb_cfg.mode
    if mode not in WANDB_MODES:
        raise ValueError(f"logger.wandb.mode={mode!r}: choose one of {WANDB_MODES}")
    if mode == "auto":
        mode = "online" if wandb_key_configured() else "offline"
    logger = WandbLogger(
        project=wandb_cfg.project,
        entity=wandb_cfg.entity,
        group=wandb_cfg.group,
        tags=list(wandb_cfg.tags),
        job_type=job_type,
        name=name,
        id=stable_run_id(name),
        save_dir=str(run_dir),
        mode=mode,
        resume="allow",
    )
    logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    return logger
