"""Turn a composed Hydra config into live objects. Hydra's ``_target_`` is the registry:
nothing here switches on component names, so a new schedule or sampler is a class + yaml.
"""

from __future__ import annotations

from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

import lit_illada.resolvers  # noqa: F401 - registers the resolvers conf/ uses
from lit_illada.model import ModelConfig
from lit_illada.module import DiffusionLM

CONF_DIR = Path(__file__).resolve().parent / "conf"
if not CONF_DIR.is_dir():  # running from a source checkout: conf/ sits beside the package
    CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def build_model_config(cfg: DictConfig) -> ModelConfig:
    return instantiate(cfg.model)


def build_tokenizer(cfg: DictConfig):
    return instantiate(cfg.tokenizer)


def build_objective(cfg: DictConfig, tokenizer):
    return instantiate(
        cfg.objective,
        noise=instantiate(cfg.noise),
        weighting=instantiate(cfg.weighting),
        masking=instantiate(cfg.masking),
        mask_id=tokenizer.mask_id,
    )


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


def build_module(cfg: DictConfig, tokenizer, model_config: ModelConfig | None = None) -> DiffusionLM:
    return DiffusionLM(
        model=model_config or build_model_config(cfg),
        objective=build_objective(cfg, tokenizer),
        optimizer=instantiate(cfg.optim),
        lr_schedule=instantiate(cfg.lr_schedule) if cfg.get("lr_schedule") else None,
        sampler=build_sampler(cfg, tokenizer),
        byte_level=tokenizer.is_byte_level,
        run_config=OmegaConf.to_container(cfg, resolve=True),
        parallel=instantiate(cfg.parallel) if cfg.get("parallel") else None,  # trainer=fsdp
    )


# Model fields that do not change the weights: a checkpoint loads across them.
RUNTIME_ONLY_FIELDS = ("attn_backend", "init_std", "name")


def load_weights(module: DiffusionLM, checkpoint_path: str | Path) -> None:
    """Copy backbone weights from a training checkpoint (SFT from a base run).

    Loaded with ``weights_only=True``: a checkpoint can never run pickled code.
    """
    state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    weights = {k.removeprefix("net."): v for k, v in state["state_dict"].items() if k.startswith("net.")}
    saved = state.get("lit_illada", {}).get("model_config")
    current = module.config.to_dict()
    diff = {
        key: (value, current.get(key))
        for key, value in (saved or {}).items()
        if key not in RUNTIME_ONLY_FIELDS and current.get(key) != value
    }
    if diff:
        raise ValueError(
            f"init_from={checkpoint_path} was trained with a different model config "
            f"(checkpoint vs this run: {diff}); pass the same model= preset"
        )
    module.net.load_state_dict(weights)


def load_model_preset(name: str) -> ModelConfig:
    """A ``conf/model/<name>.yaml`` preset without composing a whole run config."""
    path = CONF_DIR / "model" / f"{name}.yaml"
    if not path.exists():
        options = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise ValueError(f"model={name!r} is not a preset; choose one of {options}")
    return instantiate(OmegaConf.load(path))
