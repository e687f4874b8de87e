"""W&B runs, from the API or from offline files, as RunData.

Training logs one W&B run (job_type pretrain/sft) with the resolved config; each
``lit_illada.evaluate wandb=true`` logs another (job_type eval) whose config is results.json
without its tasks and whose summary holds ``<task>/<metric>``. The evaluation is joined to
the training run its checkpoint came from, as results.json sits in the run record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analysis.records import checkpoint_run_dir
from analysis.rows import RunData

EVAL_JOB = "eval"
# Lightning's bookkeeping in every W&B summary and history row; "epoch" is its 0-based
# training epoch, not the SFT epoch an evaluation belongs to.
LIGHTNING_KEYS = ("epoch", "trainer/global_step")


@dataclass
class WandbRun:
    """The parts of a W&B run the analysis reads (the API's Run and OfflineRun both give them)."""

    id: str
    name: str
    config: dict
    summary: dict
    history: str  # a load_history reference
    job_type: str = ""
    group: str = ""
    tags: list[str] = field(default_factory=list)
    state: str = ""


def clean_summary(summary: dict) -> dict[str, Any]:
    """Scalar metrics only, without W&B's and Lightning's bookkeeping."""
    return {
        key: value
        for key, value in summary.items()
        if not key.startswith("_")
        and key not in LIGHTNING_KEYS
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
    }


def as_results(run: WandbRun) -> dict:
    """An eval run back in results.json's shape."""
    tasks: dict[str, dict] = {}
    for key, value in clean_summary(run.summary).items():
        task, _, metric = key.partition("/")
        if metric:
            tasks.setdefault(task, {})[metric] = value
    return {**run.config, "tasks": tasks, "epoch": run.config.get("epoch")}


def to_run_data(runs: list[WandbRun], source: str) -> list[RunData]:
    trained: dict[str, RunData] = {}
    evaluations = []
    for run in runs:
        if run.job_type == EVAL_JOB:
            evaluations.append(run)
            continue
        trained[run.name] = RunData(
            name=run.name,
            source=source,
            history=run.history,
            config=run.config,
            summary=clean_summary(run.summary),
            extra={
                "wandb.id": run.id,
                "wandb.group": run.group or None,
                "wandb.tags": list(run.tags),
                "wandb.state": run.state,
                "wandb.job_type": run.job_type,
            },
        )
    for run in evaluations:
        results = as_results(run)
        owner_name = checkpoint_run_dir(str(results.get("ckpt") or run.name)).name
        owner = trained.get(owner_name)
        if owner is None:  # the training run is not in this source: the evaluation stands alone
            owner = trained[owner_name] = RunData(name=owner_name, source=source, extra={"wandb.id": run.id})
        if results["epoch"] is not None:
            owner.epochs.append(results)
        else:
            owner.results = results
    for run in trained.values():
        run.epochs.sort(key=lambda r: r["epoch"])
    return list(trained.values())
