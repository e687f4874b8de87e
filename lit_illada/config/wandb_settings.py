"""Weights & Biases settings every command shares (training, evaluation, the sweep driver).

``wandb_init_kwargs`` turns a ``logger.wandb`` node (conf/logger/wandb.yaml) into the
arguments of ``wandb.init``: project, entity, group, tags, mode and, for a self-hosted server,
its base URL. Training hands them to Lightning's WandbLogger, evaluation and the sweep driver to
``wandb.init``, so all three land in the same place. Besides: stable run ids and the component
tags. ``wandb`` is imported only inside the functions that decide for a run about to start, so
the sweep driver imports this module without it (and without Lightning).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from omegaconf import DictConfig

from lit_illada.config.choices import CHOICES_KEY, attention_name
from lit_illada.config.errors import ConfigError

WANDB_MODES = ("auto", "online", "offline", "disabled")
# logger.wandb.log_model: which checkpoints become W&B `model` artifacts (training only).
# true is Lightning's spelling of "best" here: WandbLogger(log_model=True) uploads the
# ModelCheckpoint's files once training ends, and this project's only one is best.ckpt.
LOG_MODEL_CHOICES = ("last", "best", "all")
# The sweep driver names each trial's W&B group (the study) through the environment, so the
# trial's command line, and with it its config, stays the same whatever logger it uses.
WANDB_GROUP_ENV = "LIT_ILLADA_WANDB_GROUP"
# Config groups whose recorded choice (cfg.choices) becomes a W&B tag ("noise=cosine").
TAGGED_GROUPS = (
    "model", "objective", "noise", "weighting", "masking", "sampler", "scoring", "stage", "experiment",
)


def check_wandb_config(wandb_cfg: DictConfig) -> None:
    """The ``logger.wandb`` values that W&B would reject only once the run starts, checked now."""
    if wandb_cfg.mode not in WANDB_MODES:
        raise ConfigError(f"logger.wandb.mode={wandb_cfg.mode!r}: choose one of {', '.join(WANDB_MODES)}")
    log_model_choice(wandb_cfg)
    base_url = wandb_cfg.get("base_url")
    if base_url is not None:
        parts = urlsplit(str(base_url))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f"logger.wandb.base_url={base_url!r}: expected the server's URL, e.g. "
                f"https://wandb.example.org (or null: WANDB_BASE_URL, else `wandb login --host`'s)"
            )


def log_model_choice(wandb_cfg: DictConfig) -> str | None:
    """``logger.wandb.log_model`` as last, best, all, or None (off)."""
    value = wandb_cfg.get("log_model")
    if value is None or value is False:
        return None
    if value is True:
        return "best"
    if value not in LOG_MODEL_CHOICES:
        raise ConfigError(
            f"logger.wandb.log_model={value!r}: choose false, last (the final checkpoint), best "
            f"(best.ckpt, lowest val/nll) or all (every new best.ckpt as it is written, then the final one)"
        )
    return value


def wandb_init_kwargs(
    wandb_cfg: DictConfig,
    *,
    name: str,
    run_id: str,
    job_type: str,
    directory: str | Path,
    group: str | None = None,
    tags: Iterable[str] = (),
) -> dict[str, Any]:
    """The ``wandb.init`` arguments of a run under these ``logger.wandb`` settings.

    The group is ``logger.wandb.group`` if set, else ``group`` (the sweep driver's study), else
    the one a sweep driver gave its trial (``WANDB_GROUP_ENV``). ``tags`` come after the
    configured ones. A configured ``base_url`` goes in as ``wandb.Settings``; without one
    wandb finds its server itself (``WANDB_BASE_URL``, else ``wandb login --host``'s).
    """
    check_wandb_config(wandb_cfg)
    base_url = wandb_cfg.get("base_url")
    kwargs: dict[str, Any] = {
        "project": wandb_cfg.project,
        "entity": wandb_cfg.entity,
        "group": wandb_cfg.group or group or os.environ.get(WANDB_GROUP_ENV) or None,
        "tags": [*wandb_cfg.tags, *tags],
        "job_type": job_type,
        "name": name,
        "id": run_id,
        "dir": str(directory),
        "mode": wandb_mode(wandb_cfg.mode, base_url),
        "resume": "allow",
    }
    if base_url is not None:
        import wandb  # noqa: PLC0415 - slow import, only for a run about to start

        kwargs["settings"] = wandb.Settings(base_url=str(base_url))
    return kwargs


def wandb_mode(configured: str, base_url: str | None = None) -> str:
    """The mode a run starts in; ``auto``: online when wandb has a key for its server, else offline."""
    if configured not in WANDB_MODES:
        raise ConfigError(f"logger.wandb.mode={configured!r}: choose one of {', '.join(WANDB_MODES)}")
    if configured != "auto":
        return configured
    # W&B's own switch wins over a key: WANDB_MODE=offline (or disabled) keeps a keyed machine offline.
    env = os.environ.get("WANDB_MODE")
    if env in ("online", "offline", "disabled"):
        return env
    return "online" if wandb_key_configured(base_url) else "offline"


def wandb_key_configured(base_url: str | None = None) -> bool:
    """True when wandb would find credentials for its server: ``WANDB_API_KEY`` (or an identity
    token file) in the environment, or a ``.netrc`` entry for that server's host.

    The server is ``base_url`` if given, else the one wandb resolves (``WANDB_BASE_URL``, else
    the settings file ``wandb login --host`` writes, else W&B's cloud), and the netrc entry is
    looked up by wandb itself: a key saved for a self-hosted server counts for that server only.
    """
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    from wandb.errors import AuthenticationError  # noqa: PLC0415 - slow import, only when deciding
    from wandb.sdk import wandb_setup  # noqa: PLC0415
    from wandb.sdk.lib.wbauth import read_netrc_auth  # noqa: PLC0415 - wandb's lookup, as wandb.init does it

    # The settings wandb.init will use; reading them does not start wandb's service process.
    host = base_url or wandb_setup.singleton().settings.base_url
    try:
        return read_netrc_auth(host=str(host)) is not None
    except AuthenticationError:
        return True  # a key is there but malformed: online, so that wandb says what is wrong with it


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
