"""What the driver reports: one line per finished trial, then a table of all trials with the
best trial (single objective) or the Pareto front (several); trials.csv for analysis; and, with
``wandb=true``, the sweep's own W&B run (job_type ``sweep``): the study's trials as a table, in
the same project and group as the trials' runs, so a dashboard shows the ablation beside its
training curves. Its W&B settings are the trials' own ``logger.wandb`` (the sweep file's fixed
overrides and those after ``--``), or conf/logger/wandb.yaml's where the trials log no W&B run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import optuna
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from rich.table import Table

from lit_illada.config.paths import CONF_DIR
from lit_illada.config.wandb_settings import stable_run_id, wandb_init_kwargs
from lit_illada.sweeping.definition import SweepDefinition


def _fmt(value) -> str:
    return f"{value:.5g}" if isinstance(value, float) else str(value)


def _params(trial: FrozenTrial) -> str:
    return " ".join(f"{key}={_fmt(value)}" for key, value in trial.params.items())


def _seconds(trial: FrozenTrial) -> str:
    return f"{trial.duration.total_seconds():.1f}" if trial.duration else ""


def _note(trial: FrozenTrial) -> str:
    if trial.state == TrialState.PRUNED:
        return f"pruned at step {trial.user_attrs.get('pruned_at_step', '?')}"
    if trial.state != TrialState.FAIL:
        return ""
    # No error recorded: the driver never saw the trial end (killed; failed later by heartbeat).
    return trial.user_attrs.get("error", "no result: its driver stopped (stale heartbeat)")


def trial_printer(definition: SweepDefinition):
    """An Optuna callback: one line per finished trial, as the sweep goes."""
    metrics = [o.metric for o in definition.objectives]

    def print_trial(study: optuna.Study, trial: FrozenTrial) -> None:
        values = " ".join(f"{m}={_fmt(v)}" for m, v in zip(metrics, trial.values or [], strict=False))
        result = values if trial.state == TrialState.COMPLETE else _note(trial)
        print(
            f"trial {trial.number} {trial.state.name} {_params(trial)} -> {result} ({_seconds(trial)} s)",
            flush=True,
        )

    return print_trial


def best_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The best trial, or every trial on the Pareto front; empty while none has completed."""
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return []
    return study.best_trials if len(study.directions) > 1 else [study.best_trial]


def print_report(study: optuna.Study, definition: SweepDefinition, console: Console | None = None) -> None:
    # markup off: params and errors hold brackets ("[0.9,0.95]") that rich would eat as markup.
    console = console or Console(width=None if sys.stdout.isatty() else 200, markup=False, highlight=False)
    best = {t.number for t in best_trials(study)}
    label = "Pareto front" if len(study.directions) > 1 else "best"
    table = Table(title=f"study {study.study_name}: {len(study.trials)} trials")
    for column in [
        "#",
        "state",
        *definition.space.keys,
        *(o.metric for o in definition.objectives),
        "s",
        "note",
    ]:
        table.add_column(column)
    for trial in study.trials:
        values = [_fmt(v) for v in trial.values] if trial.values else [""] * len(definition.objectives)
        table.add_row(
            f"{trial.number}{' *' if trial.number in best else ''}",
            trial.state.name,
            *(_fmt(trial.params[key]) if key in trial.params else "-" for key in definition.space.keys),
            *values,
            _seconds(trial),
            _note(trial)[:80],
        )
    console.print(table)
    if not best:
        console.print("no trial completed; the note column and each trial's user attrs (stderr_tail) say why")
        return
    directions = ", ".join(f"{o.direction} {o.metric}" for o in definition.objectives)
    console.print(f"{label} (* above; {directions}):")
    for trial in best_trials(study):
        values = " ".join(
            f"{o.metric}={_fmt(v)}" for o, v in zip(definition.objectives, trial.values, strict=True)
        )
        console.print(
            f"  trial {trial.number}: {values}  {_params(trial)}  run: {trial.user_attrs.get('run_dir')}"
        )


def write_trials_csv(study: optuna.Study, path: Path) -> None:
    """Every trial with params, values and user attrs (run_dir links to the run record)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # concurrent drivers: each replaces whole
    study.trials_dataframe().to_csv(tmp, index=False)
    os.replace(tmp, path)


def trials_wandb_settings(config_name: str, overrides: list[str]) -> DictConfig:
    """``logger.wandb`` of the trials' config (conf/<config_name>.yaml with the trials' fixed
    overrides); conf/logger/wandb.yaml's when the trials log no W&B run (logger=csv)."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides)  # composed once already by plan_sweep
    wandb_cfg = cfg.get("logger", {}).get("wandb")
    return wandb_cfg if wandb_cfg is not None else OmegaConf.load(CONF_DIR / "logger" / "wandb.yaml").wandb


def log_study(
    study: optuna.Study, definition: SweepDefinition, sweep_dir: Path, wandb_cfg: DictConfig
) -> None:
    import wandb  # noqa: PLC0415 - slow import, only when asked

    metrics = [o.metric for o in definition.objectives]
    params = sorted({key for trial in study.trials for key in trial.params})
    columns = ["trial", "state", *params, *metrics, "run_dir"]
    rows = [
        [
            trial.number,
            trial.state.name,
            *(trial.params.get(key) for key in params),
            *(trial.values or [None] * len(metrics)),
            trial.user_attrs.get("run_dir"),
        ]
        for trial in study.trials
    ]
    kwargs = wandb_init_kwargs(
        wandb_cfg, name=f"{study.study_name}-sweep", job_type="sweep", directory=sweep_dir,
        run_id=stable_run_id(f"sweep:{sweep_dir.resolve()}:{study.study_name}"),
        group=study.study_name,  # the trials' group, unless logger.wandb.group names another for all
    )
    run = wandb.init(
        **kwargs,
        config={"sweep_file": str(definition.path), "command": definition.command,
                "objectives": {o.metric: o.direction for o in definition.objectives}},
    )
    run.log({"trials": wandb.Table(columns=columns, data=rows)})
    best = best_trials(study)
    if len(best) == 1:
        run.summary.update({f"best/{m}": v for m, v in zip(metrics, best[0].values, strict=True)})
        run.summary.update({f"best/{k}": v for k, v in best[0].params.items()})
    run.finish()
