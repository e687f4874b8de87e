"""Weights & Biases settings every command shares (training, evaluation, the sweep driver): the
mode, the group, stable run ids and the component tags. No Lightning and no ``wandb`` import here,
so the sweep driver and evaluation use them without either.
"""

from __future__ import annotations

import hashlib
import netrc
import os

from omegaconf import DictConfig

from lit_illada.config.choices import CHOICES_KEY, attention_name

WANDB_MODES = ("auto", "online", "offline", "disabled")
# The sweep driver names each trial's W&B group (the study) through the environment, so the
# trial's command line, and with it its config, stays the same whatever logger it uses.
WANDB_GROUP_ENV = "LIT_ILLADA_WANDB_GROUP"
# Config groups whose recorded choice (cfg.choices) becomes a W&B tag ("noise=cosine").
TAGGED_GROUPS = (
    "model", "objective", "noise", "weighting", "masking", "sampler", "scoring", "stage", "experiment",
)


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


def component_tags(cfg: DictConfig) -> list[str]:
    """``group=option`` for the run's swappable components (its recorded ``choices``), plus its
    attention variant and backend."""
    choices = cfg.get(CHOICES_KEY) or {}
    tags = [f"{group}={choices[group]}" for group in TAGGED_GROUPS if choices.get(group)]
    model = cfg.get("model")
    if model is not None:
        tags.append(f"attention={attention_name(model)}")
        tags.append(f"backend={model.attn_backend}")
    return tags


def wandb_group(configured: str | None) -> str | None:
    return configured or os.environ.get(WANDB_GROUP_ENV) or None


def wandb_mode(configured: str) -> str:
    if configured not in WANDB_MODES:
        raise ValueError(f"logger.wandb.mode={configured!r}: choose one of {WANDB_MODES}")
    if configured == "auto":
        # W&B's own switch wins over a key: WANDB_MODE=offline (or disabled) keeps a keyed machine offline.
        env = os.environ.get("WANDB_MODE")
        if env in ("online", "offline", "disabled"):
            return env
        return "online" if wandb_key_configured() else "offline"
    return configured


