"""Compose the trial config for every candidate value before any trial runs.

A typo in a searched key, a config group option that does not exist, or a fixed override
that the config rejects would otherwise fail trial after trial, each after seconds of
imports. Hydra's compose API over the real conf/ tree finds them in well under a second and
the error names the sweep key at fault. Semantic checks (``optimizer.lr > 0``, heads divisible by
KV heads) stay with the entry point, which refuses them at start-up with exit code 2; such a
trial is recorded as FAILED and the sweep goes on.
"""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from lit_illada.config.overrides import explain_override_error
from lit_illada.sweeping.definition import MANAGED_KEYS, SweepDefinition, override_key
from lit_illada.sweeping.errors import SweepConfigError
from lit_illada.sweeping.model_paths import MODEL_PATH_KEYS, model_path_problem, value_of

EXAMPLE_VALUES = {"ckpt": "runs/<name>", "init_from": "runs/<base>/checkpoints/last.ckpt"}


def check_trial_overrides(definition: SweepDefinition, trial_overrides: list[str]) -> None:
    """The overrides given after ``--`` may neither redo the driver's job nor shadow the space."""
    for override in trial_overrides:
        if "=" not in override:
            raise SweepConfigError(f"-- {override}: expected key=value (a train override for every trial)")
        key = override_key(override)
        if key in MANAGED_KEYS:
            raise SweepConfigError(f"-- {override}: the sweep sets {key} for every trial; drop it")
        if key in definition.space.keys:
            raise SweepConfigError(f"-- {override}: {key} is searched by {definition.path}; drop it")


def check_required(definition: SweepDefinition, required: dict[str, str], base: list[str]) -> None:
    """Every key the sweep needs (``required:`` of the file, ``ckpt`` of command=evaluate) has a value.

    Without ``init_from`` an SFT sweep would train from random weights in every trial, silently.
    """
    for key, why in required.items():
        if value_of(base, key) is None:
            example = EXAMPLE_VALUES.get(key, "<value>")
            raise SweepConfigError(
                f"{definition.path}: {key}: required ({why}); give it after --, e.g. "
                f"python -m lit_illada.sweep sweep={definition.path.stem} -- {key}={example}"
            )


def check_model_paths(definition: SweepDefinition, base: list[str], trial_overrides: list[str]) -> None:
    """The checkpoints the trials load exist and look like checkpoints (see model_paths)."""
    for key in MODEL_PATH_KEYS:
        value = value_of(base, key)
        if value is None:
            continue
        problem = model_path_problem(value)
        if problem is not None:
            where = "--" if value_of(trial_overrides, key) == value else f"{definition.path}:"
            raise SweepConfigError(
                f"{where} {key}={value}: {problem}; every trial would fail on it. "
                f"Give a checkpoint, a run directory or a model directory, e.g. {key}={EXAMPLE_VALUES[key]}"
            )


def check_composes(definition: SweepDefinition, config_name: str, base: list[str], conf_dir: Path) -> None:
    """Compose ``config_name`` with the base overrides, then with each candidate value of the space."""
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        _compose(config_name, base, "the fixed overrides (the sweep's fixed and preset, and those after --)")
        for dim, value, assignment in definition.space.probe_assignments():
            others = definition.space.overrides({k: v for k, v in assignment.items() if k != dim.key})
            context = f" (with {' '.join(others)})" if others else ""
            culprit = f"{definition.path}: space.{dim.key}: the value {value!r}{context}"
            _compose(config_name, [*base, *definition.space.overrides(assignment)], culprit)


def _compose(config_name: str, overrides: list[str], culprit: str) -> None:
    try:
        compose(config_name=config_name, overrides=overrides)
    except (HydraException, OmegaConfBaseException) as err:
        # One line naming the key and its nearest real neighbour, not Hydra's "+key=value" hint.
        detail = " ".join(explain_override_error(err, config_name, overrides).split())
        raise SweepConfigError(f"{culprit} does not compose with conf/{config_name}.yaml: {detail}") from None


def check_overrides_compose(config_name: str, overrides: list[str], conf_dir: Path, culprit: str) -> None:
    """A plain list of overrides (e.g. a sweep's evaluate.overrides) against one config."""
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        _compose(config_name, overrides, culprit)
