"""One run, whatever it was read from, and the table rows made of it.

Every source (local records, offline W&B, the W&B API, an Optuna study) fills a RunData;
the columns are made here, once, so all sources give the same names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analysis.naming import component_columns, evaluation_columns, flatten, task_columns


@dataclass
class RunData:
    name: str
    source: str  # "local", "wandb-offline", "wandb" or "optuna"
    history: str | None = None  # a reference load_history() understands, e.g. "csv:<path>"
    config: dict = field(default_factory=dict)  # the resolved training config, nested
    summary: dict = field(default_factory=dict)  # flat final metrics (summary.json)
    results: dict | None = None  # the run's final evaluation (results.json)
    epochs: list[dict] = field(default_factory=list)  # one evaluation per SFT epoch
    extra: dict = field(default_factory=dict)  # source-specific columns; they win over the rest


def evaluation_row(results: dict) -> dict[str, Any]:
    row: dict[str, Any] = {"epoch": results.get("epoch")}
    row.update(evaluation_columns(results))
    row.update(task_columns(results.get("tasks")))
    if results.get("ckpt"):
        row["ckpt"] = results["ckpt"]
    # The evaluate config under eval.: sampler.steps there is what generated, not training's sampler.
    row.update({f"eval.{key}": value for key, value in flatten(results.get("config") or {}).items()})
    return row


def run_row(run: RunData, results: dict | None) -> dict[str, Any]:
    """Friendly columns, then metrics, then the flat config; ``results`` adds one evaluation."""
    row: dict[str, Any] = {"run": run.name, "source": run.source, "epoch": None}
    row.update(component_columns(run.config))
    evaluation = evaluation_row(results) if results else {}
    # sampler/scoring/objective of the evaluation replace the training config's.
    row.update(
        {
            key: evaluation.pop(key)
            for key in ("epoch", "sampler", "scoring", "objective")
            if key in evaluation
        }
    )
    row.update(run.summary)
    row.update(evaluation)
    row.update({key: value for key, value in flatten(run.config).items() if key not in row})
    row.update(run.extra)
    row["history"] = run.history
    return row


def runs_rows(runs: list[RunData]) -> list[dict[str, Any]]:
    return [run_row(run, run.results) for run in runs]


def epoch_rows(runs: list[RunData]) -> list[dict[str, Any]]:
    return [run_row(run, results) for run in runs for results in run.epochs]
