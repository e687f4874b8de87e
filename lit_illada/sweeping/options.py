"""The driver's options: conf/sweep.yaml composed with the command line, then checked."""

from __future__ import annotations

import shutil
import sys

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lit_illada.sweeping.errors import SweepConfigError
from lit_illada.sweeping.paths import CONF_DIR
from lit_illada.sweeping.process import trial_env


def compose_options(overrides: list[str]) -> DictConfig:
    known = list(OmegaConf.load(CONF_DIR / "sweep.yaml"))
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if key not in known:
            raise SweepConfigError(
                f"{override}: unknown sweep option {key!r}; options: {', '.join(known)}. "
                f"Train overrides for every trial go after --, e.g. -- trainer=gpu"
            )
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        try:
            options = compose(config_name="sweep", overrides=overrides)
        except (HydraException, OmegaConfBaseException) as err:
            detail = " ".join(str(err).split())
            raise SweepConfigError(f"sweep options: {detail}") from None
    if OmegaConf.is_missing(options, "sweep"):
        raise SweepConfigError(
            "sweep: required, e.g. sweep=objective (a file of sweeps/) or sweep=path/to/file.yaml"
        )
    check_options(options)
    return options


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _positive_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _non_negative_int(value) -> bool:
    return value == 0 and not isinstance(value, bool) or _positive_int(value)


def _or_null(test):
    return lambda value: value is None or test(value)


CHECKS = (
    ("workers", _positive_int, "a positive integer"),
    ("devices_per_worker", _or_null(_positive_int), "a positive integer or null"),
    ("heartbeat_interval", _or_null(_positive_int), "a positive integer (seconds) or null"),
    ("grace_period", _or_null(_positive_int), "a positive integer (seconds) or null"),
    ("retry_failed", _non_negative_int, "an integer >= 0"),
    ("trial_timeout", _or_null(_positive_number), "a positive number (seconds) or null"),
    ("poll_interval", _positive_number, "a positive number (seconds)"),
)


def check_options(options: DictConfig) -> None:
    for key, ok, allowed in CHECKS:
        if not ok(options[key]):
            raise SweepConfigError(f"{key}={options[key]!r}: expected {allowed}")
    if options.retry_failed and options.heartbeat_interval is None:
        raise SweepConfigError(
            "retry_failed needs heartbeat_interval: stale trials are found by their heartbeat"
        )
    if options.launcher is not None and not (
        OmegaConf.is_list(options.launcher) and all(isinstance(v, str) for v in options.launcher)
    ):
        raise SweepConfigError(
            f"launcher={options.launcher}: expected a list of strings, e.g. [torchrun,--nproc_per_node=8]"
        )
    program = launcher(options)[0]
    if shutil.which(program) is None:
        raise SweepConfigError(f"launcher={list(launcher(options))}: {program} is not an executable on PATH")
    try:
        trial_env(options.workers - 1, options.devices_per_worker)  # the last worker must get its GPUs
    except ValueError as err:
        raise SweepConfigError(f"devices_per_worker={options.devices_per_worker}: {err}") from None


def launcher(options: DictConfig) -> list[str]:
    return list(options.launcher) if options.launcher is not None else [sys.executable]
