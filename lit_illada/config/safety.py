"""What a composed config may hold, checked before an entry point runs.

The resolved config is written to config.yaml, into every checkpoint, to results.json and to
W&B; so it must resolve (a bad interpolation fails now, with its key, not when config.yaml is
written) and it must not carry a secret (``${oc.env:WANDB_API_KEY}``, or a pasted key). Keys
reach W&B and the Hugging Face hub through the environment, never through the config.

Interpolations run no code: the resolvers are OmegaConf's ``oc.*`` (environment lookup,
decoding of literals), Hydra's ``hydra``/``now``/``python_version`` and
``lit_illada.config.resolvers``; an unknown one such as ``${shell:...}`` is refused.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

# Environment variables whose value is a credential, by name (WANDB_API_KEY, HF_TOKEN, ...).
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
MIN_SECRET_LENGTH = 8  # shorter values ("1", "true") would match ordinary config values


class UnsafeConfigError(ValueError):
    """The config does not resolve, or would write a secret to disk."""


def secret_values(environ: dict[str, str] | None = None) -> dict[str, str]:
    """``{name: value}`` of the environment variables that hold credentials."""
    environ = os.environ if environ is None else environ
    return {
        name: value
        for name, value in environ.items()
        # A path (HF_TOKEN_PATH=/root/...) names where a secret is, it is not one.
        if SECRET_NAME.search(name) and len(value) >= MIN_SECRET_LENGTH and os.sep not in value
    }


def resolved(cfg: DictConfig) -> dict:
    """The config as plain data with every interpolation resolved; the failing key is named."""
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "a config value"
        reason = str(err).split("\n", 1)[0]
        raise UnsafeConfigError(
            f"{key}: its interpolation cannot be resolved ({reason}). Config values are data: "
            "use ${other.key}, ${oc.env:NAME,default} or a resolver of lit_illada/resolvers.py"
        ) from None


def _strings(node: object, prefix: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, f"{prefix}[{index}]")
    elif isinstance(node, str):
        yield prefix, node


def check_config_safety(cfg: DictConfig) -> None:
    """Refuse a config that does not resolve or that holds the value of a credential."""
    secrets = secret_values()
    for key, value in _strings(resolved(cfg)):
        for name, secret in secrets.items():
            if secret in value:
                raise UnsafeConfigError(
                    f"{key}: holds the value of ${name}; the config is written to config.yaml, "
                    f"checkpoints and W&B, so it must not carry credentials. Remove it from the "
                    f"config: W&B and the Hugging Face hub read their keys from the environment"
                )
