"""Turn a composed Hydra config into live objects. Hydra's ``_target_`` is the registry:
nothing here switches on component names, so a new schedule or sampler is a class + yaml.
"""

from __future__ import annotations

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

import lit_illada.config.resolvers  # noqa: F401 - registers the resolvers conf/ uses
from lit_illada.config.errors import ConfigError
from lit_illada.config.paths import CONF_DIR
from lit_illada.core.model import ModelConfig

# ``model.*`` keys that say how the model runs, not what it is (conf/train.yaml): left out of the
# ModelConfig, so they never reach checkpoints, exported config.json or the compatibility checks.
RUN_ONLY_MODEL_KEYS = ("compile",)


def build_model_config(cfg: DictConfig) -> ModelConfig:
    model = OmegaConf.to_container(cfg.model, resolve=True)
    return instantiate({key: value for key, value in model.items() if key not in RUN_ONLY_MODEL_KEYS})


def compile_requested(cfg: DictConfig) -> bool:
    """``model.compile``: torch.compile each Transformer block, under every trainer."""
    value = cfg.model.get("compile", False)
    if not isinstance(value, bool):
        raise ConfigError(f"model.compile={value!r}: expected true or false")
    return value


def build_tokenizer(cfg: DictConfig):
    return instantiate(cfg.tokenizer)


def build_objective(cfg: DictConfig, tokenizer):
    """The objective with its components (its yaml interpolates the noise, weighting and masking groups)."""
    return instantiate(cfg.objective, mask_id=tokenizer.mask_id, eos_id=tokenizer.eos_id)


def fill_token_ids(sampler_cfg: DictConfig, tokenizer) -> None:
    """The sampler's mask id (``???`` in its yaml) and a missing eos id come from the tokenizer."""
    sampler_cfg.mask_id = tokenizer.mask_id
    if "eos_id" in sampler_cfg and sampler_cfg.eos_id is None:
        sampler_cfg.eos_id = tokenizer.eos_id


def build_sampler(cfg: DictConfig, tokenizer):
    if not cfg.get("sampler"):
        return None
    fill_token_ids(cfg.sampler, tokenizer)
    return instantiate(cfg.sampler)


def load_model_preset(name: str) -> ModelConfig:
    """A ``conf/model/<name>.yaml`` preset without composing a whole run config."""
    path = CONF_DIR / "model" / f"{name}.yaml"
    if not path.exists():
        options = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise ValueError(f"model={name!r} is not a preset; choose one of {options}")
    return instantiate(OmegaConf.load(path))
