"""The sweep's own W&B run (job_type ``sweep``): the study's trials as a table, in the same
group as the trials' runs, so a dashboard shows the ablation beside its training curves."""

from __future__ import annotations

from pathlib import Path

import optuna

from lit_illada.sweeping.definition import SweepDefinition
from lit_illada.sweeping.report import best_trials
from lit_illada.training.loggers import stable_run_id, wandb_mode


def log_study(study: optuna.Study, definition: SweepDefinition, sweep_dir: Path) -> None:
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
    run = wandb.init(
        project="lit_illada", job_type="sweep", group=study.study_name, name=f"{study.study_name}-sweep",
        id=stable_run_id(f"sweep:{sweep_dir.resolve()}:{study.study_name}"), dir=str(sweep_dir),
        mode=wandb_mode("auto"), resume="allow",
        config={"sweep_file": str(definition.path), "command": definition.command,
                "objectives": {o.metric: o.direction for o in definition.objectives}},
    )
    run.log({"trials": wandb.Table(columns=columns, data=rows)})
    best = best_trials(study)
    if len(best) == 1:
        run.summary.update({f"best/{m}": v for m, v in zip(metrics, best[0].values, strict=True)})
        run.summary.update({f"best/{k}": v for k, v in best[0].params.items()})
    run.finish()
