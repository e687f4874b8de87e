"""Start-up validation of a composed run config.

Every check names the key, the bad value and what is allowed, and runs before any data
is read or weight allocated: a bad override fails in a second, not ten minutes in.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from numbers import Real
from pathlib import Path

from omegaconf import DictConfig


class ConfigError(ValueError):
    """A config value that cannot work; the message says which key and how to fix it."""


def exit_on_bad_input(entry: Callable[[DictConfig], object], cfg: DictConfig) -> None:
    """Run an entry point; a bad config prints one clear line and exits 2 (no traceback)."""
    from hydra.errors import InstantiationException  # noqa: PLC0415

    try:
        entry(cfg)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    except InstantiationException as err:  # a component's constructor rejected its arguments
        print(f"error: {err.__cause__ or err}", file=sys.stderr)
        raise SystemExit(2) from None


def _number(cfg: DictConfig, key: str, low: float | None = None, low_inclusive: bool = False) -> float:
    value = cfg_get(cfg, key)
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ConfigError(f"{key}={value!r}: expected a number")
    if low is not None and (value < low or (value == low and not low_inclusive)):
        bound = ">=" if low_inclusive else ">"
        raise ConfigError(f"{key}={value}: must be {bound} {low}")
    return value


def _positive_int(cfg: DictConfig, key: str, allow: tuple = ()) -> int:
    value = cfg_get(cfg, key)
    if value in allow:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        extra = f" (or one of {list(allow)})" if allow else ""
        raise ConfigError(f"{key}={value!r}: expected a positive integer{extra}")
    return value


def cfg_get(cfg: DictConfig, key: str):
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def check_train_config(cfg: DictConfig, tokenizer_vocab: int, tokenizer_mask_id: int) -> None:
    _number(cfg, "optim.lr", low=0.0)
    _number(cfg, "optim.weight_decay", low=0.0, low_inclusive=True)
    seq_len = _positive_int(cfg, "data.seq_len")
    _positive_int(cfg, "data.batch_size")
    _positive_int(cfg, "trainer.max_steps", allow=(-1,))
    for key in ("model.vocab_size", "model.max_seq_len", "model.n_layers", "model.d_model"):
        _positive_int(cfg, key)

    max_len = cfg.model.max_seq_len
    if seq_len > max_len:
        raise ConfigError(
            f"data.seq_len={seq_len} exceeds model.max_seq_len={max_len}; lower data.seq_len "
            f"or choose a model with a longer context"
        )
    if tokenizer_vocab > cfg.model.vocab_size:
        raise ConfigError(
            f"model.vocab_size={cfg.model.vocab_size} is smaller than the tokenizer's vocabulary "
            f"({tokenizer_vocab}); set model.vocab_size>={tokenizer_vocab} or use another tokenizer"
        )
    if not 0 <= tokenizer_mask_id < cfg.model.vocab_size:
        raise ConfigError(
            f"tokenizer mask id {tokenizer_mask_id} is outside the model vocabulary "
            f"[0, {cfg.model.vocab_size}); set tokenizer.mask_id"
        )
    sampler = cfg.get("sampler")
    if sampler is not None and cfg.num_samples > 0:
        needed = cfg.sample_prompt_length + sampler.gen_length
        if needed > max_len:
            raise ConfigError(
                f"sample_prompt_length + sampler.gen_length = {needed} exceeds "
                f"model.max_seq_len={max_len}; lower one of them"
            )
    if cfg.init_from is not None and not Path(cfg.init_from).exists():
        raise ConfigError(f"init_from={cfg.init_from}: no such checkpoint file")
