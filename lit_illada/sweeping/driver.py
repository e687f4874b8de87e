"""A sweep from its options to a finished study.

``plan_sweep`` does everything that can fail on a mistake (sweep file, command, every
override composed against the train config, sampler, budget) and touches nothing on disk;
``run_sweep`` then opens the storage and the study, runs the trials and reports.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import optuna
from omegaconf import DictConfig

from lit_illada.sweeping.budget import AskLock, count
from lit_illada.sweeping.commands import Command, EvaluateCommand, TrainThenEvaluateCommand, build_command
from lit_illada.sweeping.definition import SweepDefinition, load_definition
from lit_illada.sweeping.errors import SweepConfigError
from lit_illada.sweeping.objective import TrialObjective, TrialSettings
from lit_illada.sweeping.options import launcher
from lit_illada.sweeping.paths import CONF_DIR, find_sweep_file
from lit_illada.sweeping.report import print_report, trial_printer, write_trials_csv
from lit_illada.sweeping.storage import default_storage_url, heartbeat_enabled, open_storage
from lit_illada.sweeping.study import build_pruner, build_sampler, open_study, resolve_n_trials
from lit_illada.sweeping.validate import check_composes, check_overrides_compose, check_trial_overrides
from lit_illada.sweeping.workers import Workers


@dataclass(frozen=True)
class SweepPlan:
    definition: SweepDefinition
    command: Command
    study_name: str
    n_trials: int
    sweep_dir: Path
    base_overrides: list[str]  # fixed, preset, then the overrides after `--`


def plan_sweep(options: DictConfig, trial_overrides: list[str]) -> SweepPlan:
    definition = load_definition(find_sweep_file(options.sweep, options.sweeps_dir))
    command = build_command(definition, options.preset)
    check_trial_overrides(definition, trial_overrides)
    base = [*definition.fixed_overrides(options.preset), *trial_overrides]
    check_composes(definition, command.config_name, base, CONF_DIR)
    if isinstance(command, EvaluateCommand) and not any(o.startswith("ckpt=") for o in base):
        raise SweepConfigError(
            f"{definition.path}: command=evaluate scores one checkpoint: give it after --, e.g. "
            f"python -m lit_illada.sweep sweep={definition.path.stem} -- ckpt=runs/<name>"
        )
    if isinstance(command, TrainThenEvaluateCommand):
        check_overrides_compose("evaluate", ["ckpt=each_checkpoint", *command.overrides], CONF_DIR,
                                f"{definition.path}: evaluate.overrides")
    build_sampler(definition)  # a bad sampler or pruner argument fails now, before the study exists
    build_pruner(definition)
    study_name = options.study or definition.study
    return SweepPlan(
        definition=definition,
        command=command,
        study_name=study_name,
        n_trials=resolve_n_trials(definition, options.n_trials),
        sweep_dir=Path(options.sweeps_root) / study_name,
        base_overrides=base,
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
    study = open_study(storage, plan.definition, plan.study_name, options.preset)
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
        from lit_illada.sweeping.wandb_run import log_study  # noqa: PLC0415 - imports wandb

        log_study(study, plan.definition, plan.sweep_dir)
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
