"""A sweep from its options to a finished study.

``compose_options`` reads the driver's options (conf/sweep.yaml composed with the command
line) and checks them; ``plan_sweep`` does everything that can fail on a mistake (sweep file,
command, every override composed against the train config, sampler, budget) and touches
nothing on disk; ``run_sweep`` then opens the storage and the study, runs the trials and reports.
"""

from __future__ import annotations

import shutil
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import optuna
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lit_illada.config.errors import ConfigError
from lit_illada.config.outputs import check_output_folder
from lit_illada.config.paths import CONF_DIR
from lit_illada.sweeping.commands import Command, TrainThenEvaluateCommand, build_command
from lit_illada.sweeping.definition import SweepDefinition, find_sweep_file, load_definition
from lit_illada.sweeping.errors import SweepConfigError
from lit_illada.sweeping.model_paths import absolute
from lit_illada.sweeping.objective import TrialObjective, TrialSettings, trial_env
from lit_illada.sweeping.report import (
    log_study,
    print_report,
    trial_printer,
    trials_wandb_settings,
    write_trials_csv,
)
from lit_illada.sweeping.study import (
    build_pruner,
    build_sampler,
    default_storage_url,
    heartbeat_enabled,
    open_storage,
    open_study,
    resolve_n_trials,
)
from lit_illada.sweeping.validate import (
    check_composes,
    check_model_paths,
    check_overrides_compose,
    check_required,
    check_trial_overrides,
)
from lit_illada.sweeping.workers import AskLock, Workers, count

# -- the driver's options --------------------------------------------------------------------------


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


# -- plan and run ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepPlan:
    definition: SweepDefinition
    command: Command
    study_name: str
    n_trials: int
    sweep_dir: Path
    base_overrides: list[str]  # fixed, preset, then the overrides after `--`
    identity: dict  # what a resumed study must have been started with (SweepDefinition.identity)
    sampler: optuna.samplers.BaseSampler
    pruner: optuna.pruners.BasePruner


def plan_sweep(options: DictConfig, trial_overrides: list[str]) -> SweepPlan:
    definition = load_definition(find_sweep_file(options.sweep, options.sweeps_dir))
    command = build_command(definition, options.preset)
    check_trial_overrides(definition, trial_overrides)
    base = [*definition.fixed_overrides(options.preset), *trial_overrides]
    check_required(definition, {**command.required, **definition.required}, base)
    check_model_paths(definition, base, trial_overrides)
    check_composes(definition, command.config_name, base, CONF_DIR)
    if isinstance(command, TrainThenEvaluateCommand):
        check_overrides_compose("evaluate", ["ckpt=each_checkpoint", *command.overrides], CONF_DIR,
                                f"{definition.path}: evaluate.overrides")
    sampler = build_sampler(definition)  # a bad sampler or pruner fails now, before the study exists
    pruner = build_pruner(definition)
    study_name = options.study or definition.study
    try:  # where trials and the study are written: before the first trial, not after it
        check_output_folder(Path(options.sweeps_root) / study_name, "sweeps_root", given=options.sweeps_root)
    except ConfigError as err:
        raise SweepConfigError(str(err)) from None
    return SweepPlan(
        definition=definition,
        command=command,
        study_name=study_name,
        n_trials=resolve_n_trials(definition, options.n_trials, sampler),
        sweep_dir=Path(options.sweeps_root) / study_name,
        base_overrides=base,
        identity=definition.identity(options.preset, absolute(trial_overrides)),
        sampler=sampler,
        pruner=pruner,
    )


def run_sweep(options: DictConfig, trial_overrides: list[str]) -> optuna.Study:
    plan = plan_sweep(options, trial_overrides)
    # One line per trial comes from report.trial_printer; Optuna's own INFO lines repeat it, and
    # its warning for a FAILED trial is a traceback of the driver's TrialFailed, which says nothing.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    plan.sweep_dir.mkdir(parents=True, exist_ok=True)
    storage_url = options.storage or default_storage_url(plan.sweep_dir)
    storage = open_storage(
        storage_url, options.heartbeat_interval, options.grace_period, options.retry_failed
    )
    study = open_study(storage, plan.definition, plan.study_name, plan.identity, plan.sampler, plan.pruner)
    heartbeat = heartbeat_enabled(storage)
    _print_start(plan, study, storage_url, options.workers, heartbeat)

    settings = TrialSettings(
        sweep_dir=plan.sweep_dir,
        base_overrides=plan.base_overrides,
        launcher=launcher(options),
        poll_interval=options.poll_interval,
        timeout=options.trial_timeout,
        devices_per_worker=options.devices_per_worker,
    )
    objective = TrialObjective(plan.definition, plan.command, settings, stop=threading.Event())
    workers = Workers(
        study,
        objective,
        plan.n_trials,
        AskLock(plan.sweep_dir / ".ask.lock"),
        heartbeat=heartbeat,
        on_trial_done=trial_printer(plan.definition),
    )
    try:
        workers.run(options.workers)
    finally:  # also after Ctrl-C: what has finished is worth seeing
        print_report(study, plan.definition)
        write_trials_csv(study, plan.sweep_dir / "trials.csv")
    if options.wandb:
        wandb_cfg = trials_wandb_settings(plan.command.config_name, plan.base_overrides)
        log_study(study, plan.definition, plan.sweep_dir, wandb_cfg)
    return study


def _print_start(
    plan: SweepPlan, study: optuna.Study, storage_url: str, workers: int, heartbeat: bool
) -> None:
    budget = count(study, plan.n_trials)
    print(
        f"sweep {plan.definition.path}: study {plan.study_name!r} in {storage_url}\n"
        f"  {budget.used} of {plan.n_trials} trials already counted ({budget.running} running), "
        f"{max(plan.n_trials - budget.used, 0) + budget.waiting} to start, {workers} worker(s); "
        f"runs in {plan.sweep_dir / 'runs'}, logs in {plan.sweep_dir / 'logs'}",
        flush=True,
    )
    if not heartbeat:
        print(
            "  note: this storage has no heartbeat; a RUNNING trial whose driver was killed stays RUNNING "
            "(database storages, the default SQLite included, detect and fail it)",
            flush=True,
        )
