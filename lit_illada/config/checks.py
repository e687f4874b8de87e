"""Start-up validation of a composed run config.

Every check names the key, the bad value and what is allowed, and runs before any data
is read or weight allocated: a bad override fails in a second, not ten minutes in.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from numbers import Real
from pathlib import Path

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig
from omegaconf.errors import MissingMandatoryValue

from lit_illada.config.build import compile_requested
from lit_illada.config.errors import ConfigError
from lit_illada.config.parallel import world_size
from lit_illada.config.safety import UnsafeConfigError, check_config_safety
from lit_illada.config.wandb_settings import check_wandb_config


def exit_on_bad_input(entry: Callable[[DictConfig], object], cfg: DictConfig) -> None:
    """Run an entry point; a bad config prints one clear line and exits 2 (no traceback)."""

    try:
        check_config_safety(cfg)
        entry(cfg)
    except (ConfigError, UnsafeConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    except MissingMandatoryValue as err:  # a ??? in the yaml that the command line did not fill
        key = err.full_key
        print(f"error: {key}: needs a value; pass {key}=... on the command line", file=sys.stderr)
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


def positive_int(cfg: DictConfig, key: str, allow: tuple = ()) -> int:
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
    _number(cfg, "optimizer.lr", low=0.0)
    _number(cfg, "optimizer.weight_decay", low=0.0, low_inclusive=True)
    seq_len = positive_int(cfg, "data.seq_len")
    positive_int(cfg, "data.batch_size")
    positive_int(cfg, "trainer.max_steps", allow=(-1,))
    for key in ("model.vocab_size", "model.max_seq_len", "model.n_layers", "model.d_model"):
        positive_int(cfg, key)

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
    compile_requested(cfg)  # model.compile is a boolean
    check_peak_tflops(cfg)
    check_sampler(cfg, tokenizer_mask_id)
    sampler = cfg.get("sampler")
    if sampler is not None and cfg.num_samples > 0:
        needed = cfg.sample_prompt_length + sampler.gen_length
        if needed > max_len:
            raise ConfigError(
                f"sample_prompt_length + sampler.gen_length = {needed} exceeds "
                f"model.max_seq_len={max_len}; lower one of them"
            )
    check_run_name(cfg)
    check_devices(cfg.trainer)
    if cfg.logger.get("wandb") is not None:  # mode, log_model, base_url: before the run record is written
        check_wandb_config(cfg.logger.wandb)


def check_peak_tflops(cfg: DictConfig) -> None:
    """``peak_tflops``: null, or the device's dense peak in TFLOP/s (MFU divides by it)."""
    value = cfg.get("peak_tflops")
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, Real) or value <= 0:
        raise ConfigError(
            f"peak_tflops={value!r}: expected a positive number of TFLOP/s (e.g. 989 for an H100 SXM "
            f"in bf16), or null to take the peak from the device"
        )


def check_sampler(cfg: DictConfig, mask_id: int) -> None:
    """Build the sampler now, so its own checks (steps vs gen_length, ...) run before the run
    record is written; the module builds it again, with the tokenizer's ids filled in."""

    sampler = cfg.get("sampler")
    if sampler is None:
        return
    eos_id = sampler.get("eos_id")
    if eos_id is None:  # filled from the tokenizer later; any id other than the mask stands in
        eos_id = 0 if mask_id != 0 else 1
    try:
        instantiate(sampler, mask_id=mask_id, eos_id=eos_id)
    except InstantiationException as err:
        raise ConfigError(str(err.__cause__ or err)) from None


def check_run_name(cfg: DictConfig) -> None:
    """The run goes to <runs_root>/<name>/: a name must not point outside runs_root."""
    name = Path(str(cfg.name))
    if name.is_absolute() or ".." in name.parts:
        raise ConfigError(
            f"name={cfg.name!r}: must be a run name, not a path outside runs_root (the run goes to "
            f"runs_root/name/); choose the folder with runs_root= and give a plain name"
        )


def usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def check_devices(trainer: DictConfig) -> None:
    """More processes per node than devices: Lightning would start them all (64 processes on a
    2-core CPU) or fail only after the data is read."""


    per_node = world_size(trainer) // trainer.get("num_nodes", 1)
    accelerator = trainer.get("accelerator", "cpu")
    if accelerator == "cpu":
        have, what = usable_cpus(), "CPU cores"
    elif accelerator in ("gpu", "cuda") and torch.cuda.is_available():
        have, what = torch.cuda.device_count(), "GPUs"
    else:
        return  # no CUDA at all: the memory check says so, with the fix
    if per_node > have:
        raise ConfigError(
            f"trainer.devices={trainer.devices}: this machine has {have} {what}; set "
            f"trainer.devices<={have} (one process per device), or use more trainer.num_nodes"
        )


def pick_device(name: str):
    """``device=auto|cpu|cuda[:i]`` as a torch device; refuses CUDA where there is none."""

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name} but no CUDA device is visible; use device=cpu")
    return torch.device(name)


