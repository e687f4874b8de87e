"""The names of a run's components: Hydra's config group choices, recorded beside the config.

A resolved config keeps only ``_target_`` class paths, and two conf files may share a class
(masking/pretrain and masking/sft_full are both AllPositions). So every command records the
group choices it was composed with (``noise: cosine``, ``sampler: threshold``, ...) under the
config's top-level ``choices`` key, before anything is written: config.yaml, every
checkpoint's run config, results.json's "config", the W&B config and its tags all carry
them, and ``analysis`` names components by them. A new conf file needs no edit anywhere.

The choices come from Hydra's own record (``hydra.runtime.choices``): on the command line from
``HydraConfig``; from Hydra's compose API when called with ``return_hydra_config=True``, from
the config's ``hydra`` node, which is then removed, so the run records the same config either
way. A config composed without it records no choices.

Imports neither torch nor Lightning (``analysis`` uses ``attention_name``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

CHOICES_KEY = "choices"
COMMAND_LINE_KEY = "command_line"


def hydra_choices(cfg: DictConfig) -> dict[str, str | None] | None:
    """``{group: option}`` of the config's composition, Hydra's own groups (``hydra/...``) left
    out; None when Hydra recorded none (a config composed without ``return_hydra_config``)."""
    if "hydra" in cfg:
        runtime = OmegaConf.select(cfg, "hydra.runtime.choices")
    else:
        from hydra.core.hydra_config import HydraConfig  # noqa: PLC0415 - analysis imports this module without Hydra

        runtime = HydraConfig.get().runtime.choices if HydraConfig.initialized() else None
    if runtime is None:
        return None
    return {str(group): option for group, option in runtime.items() if not str(group).startswith("hydra/")}


def hydra_overrides(cfg: DictConfig) -> list[str] | None:
    """The overrides the config was composed with (the command line), as Hydra recorded them."""
    if "hydra" in cfg:
        overrides = OmegaConf.select(cfg, "hydra.overrides.task")
    else:
        from hydra.core.hydra_config import HydraConfig  # noqa: PLC0415 - analysis imports this module without Hydra

        overrides = HydraConfig.get().overrides.task if HydraConfig.initialized() else None
    return None if overrides is None else [str(o) for o in overrides]


def record_choices(cfg: DictConfig) -> DictConfig:
    """Put the group choices into ``cfg.choices`` and the overrides into ``cfg.command_line``
    (and drop a ``hydra`` node); returns ``cfg``."""
    choices, overrides = hydra_choices(cfg), hydra_overrides(cfg)
    with open_dict(cfg):
        if choices is not None:
            cfg[CHOICES_KEY] = choices
        if overrides is not None:
            cfg[COMMAND_LINE_KEY] = overrides
        cfg.pop("hydra", None)  # Hydra's own settings are not part of the run's config
    return cfg


def given(cfg: DictConfig, key: str) -> bool:
    """Whether the command line set ``key`` (``sampler.steps``) or chose its group (``scoring``)."""
    for override in cfg.get(COMMAND_LINE_KEY) or ():
        name = override.split("=", 1)[0].lstrip("+~")
        if name == key or name.startswith(key + ".") or name.startswith(key + "/"):
            return True
    return False


def attention_name(model: Mapping[str, Any] | None) -> str | None:
    """``mha`` when every query head has its own key/value head, else ``gqa<n_kv_heads>``
    (``gqa1`` is multi-query); None without both head counts. W&B tags and analysis use it."""
    if model is None:
        return None
    heads, kv_heads = model.get("n_heads"), model.get("n_kv_heads")
    if heads is None or kv_heads is None:
        return None
    return "mha" if kv_heads == heads else f"gqa{kv_heads}"
