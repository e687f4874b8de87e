"""Shared fixtures: presets from the real conf/ tree."""

import os

import yaml

from lit_illada.builder import CONF_DIR
from lit_illada.model import ModelConfig

# Keep CI quiet and offline; W&B never needs a server in tests.
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


def load_preset(name: str) -> ModelConfig:
    fields = yaml.safe_load((CONF_DIR / "model" / f"{name}.yaml").read_text())
    fields.pop("_target_")
    return ModelConfig(**fields)
