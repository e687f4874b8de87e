"""One run, whatever it was read from, and the table rows made of it.

Every source (local records, offline W&B, the W&B API, an Optuna study) fills a RunData;
the columns are made here, once, so all sources give the same names.

Components are named by the config group choices the run recorded (``config["choices"]``,
lit_illada/config/choices.py): ``noise`` is ``cosine`` because ``noise=cosine`` chose it, so a
new conf file needs no edit here. A record without choices (written before they were
recorded) simply has no such columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lit_illada.config.choices import CHOICES_KEY, attention_name


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


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> dotted keys; lists stay values (``optimizer.betas`` -> [0.9, 0.95])."""
    if not isinstance(node, dict):
        return {prefix: node} if prefix else {}
    flat: dict[str, Any] = {}
    for key, value in node.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name))
        else:
            flat[name] = value
    return flat


def config_columns(config: dict) -> dict[str, Any]:
    """The config flattened, without its choices (they are the component columns)."""
    return flatten({key: value for key, value in config.items() if key != CHOICES_KEY})


def choices(config: dict | None) -> dict[str, Any]:
    return dict((config or {}).get(CHOICES_KEY) or {})


def component_columns(config: dict) -> dict[str, Any]:
    """Every group choice of a training config (noise, weighting, masking, objective, sampler,
    model, data, ...), then attention (mha / gqa<n_kv_heads>), stage and seed."""
    columns = choices(config)
    columns["attention"] = attention_name(config.get("model"))
    columns["stage"] = columns.get("stage") or config.get("stage_name")
    columns["seed"] = config.get("seed")
    return columns


def evaluation_columns(results: dict) -> dict[str, Any]:
    """The choices of the evaluate command (sampler, scoring) and the checkpoint's objective."""
    columns = choices(results.get("config"))
    columns.pop("logger", None)  # where the evaluation logged (wandb=true), not a component of the run
    if results.get("objective"):
        columns["objective"] = results["objective"]
    if results.get("objective") == "autoregressive":
        # An AR checkpoint decodes left to right and is scored by its exact likelihood,
        # whatever sampler= and scoring= said.
        columns.update(sampler="autoregressive", scoring="autoregressive")
    return columns


def task_columns(tasks: dict) -> dict[str, Any]:
    """results.json ``tasks`` -> ``<task>/<metric>`` columns (numbers only)."""
    return {
        f"{task}/{metric}": value
        for task, metrics in (tasks or {}).items()
        if isinstance(metrics, dict)
        for metric, value in metrics.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }


def evaluation_row(results: dict) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the evaluation's components, its other columns)."""
    row: dict[str, Any] = {}
    row.update(task_columns(results.get("tasks")))
    if results.get("ckpt"):
        row["ckpt"] = results["ckpt"]
    # The evaluate config under eval.: sampler.steps there is what generated, not training's sampler.
    row.update({f"eval.{key}": value for key, value in config_columns(results.get("config") or {}).items()})
    return {"epoch": results.get("epoch"), **evaluation_columns(results)}, row


def run_row(run: RunData, results: dict | None) -> dict[str, Any]:
    """Components, then metrics, then the flat config; ``results`` adds one evaluation."""
    row: dict[str, Any] = {"run": run.name, "source": run.source, "epoch": None}
    row.update(component_columns(run.config))
    components, evaluation = evaluation_row(results) if results else ({}, {})
    row.update(components)  # the evaluation's sampler, scoring, objective replace the training config's
    row.update(run.summary)
    row.update(evaluation)
    row.update({key: value for key, value in config_columns(run.config).items() if key not in row})
    row.update(run.extra)
    row["history"] = run.history
    return row


def runs_rows(runs: list[RunData]) -> list[dict[str, Any]]:
    return [run_row(run, run.results) for run in runs]


def epoch_rows(runs: list[RunData]) -> list[dict[str, Any]]:
    return [run_row(run, results) for run in runs for results in run.epochs]
