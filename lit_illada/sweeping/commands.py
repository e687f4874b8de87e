"""What a trial runs, and where it leaves its metrics.

A command knows its entry point (the argv of the subprocess), which Hydra config its
overrides must compose against, and how to read the final metrics and the intermediate
values of a finished or running trial. Only ``train`` exists today; ``evaluate`` and
``train_then_evaluate`` are named so that sweep files can be written for them (see
sweeps/sft_epochs.yaml and sweeps/denoising_steps.yaml), and stop with a clear message.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from lit_illada.run_record import RunRecord
from lit_illada.sweeping.definition import SweepDefinition
from lit_illada.sweeping.errors import SweepConfigError, TrialFailed


class TrainCommand:
    """``python -m lit_illada.train``; its run record holds summary.json and metrics.csv."""

    name = "train"
    module = "lit_illada.train"
    config_name = "train"  # conf/train.yaml: what the overrides are checked against

    def __init__(self, definition: SweepDefinition) -> None:
        if definition.evaluate:
            raise SweepConfigError(
                f"{definition.path}: evaluate: only evaluate commands use it (command=train)"
            )

    def argv(self, launcher: list[str], run_name: str, runs_root: Path, overrides: list[str]) -> list[str]:
        return [*launcher, "-m", self.module, f"name={run_name}", f"runs_root={runs_root}", *overrides]

    @staticmethod
    def run_dir(runs_root: Path, run_name: str) -> Path:
        return runs_root / run_name

    def intermediate_values(self, run_dir: Path, metric: str) -> list[tuple[int, float]]:
        return read_metric_column(RunRecord(run_dir).metrics_csv, metric)

    def results(self, run_dir: Path, metrics: list[str]) -> list[float]:
        """The objective values from summary.json; a trial without them failed."""
        summary = RunRecord(run_dir).read_summary()
        if not summary:
            raise TrialFailed(f"no summary.json in {run_dir}")
        if summary.get("status") != "finished":
            raise TrialFailed(
                f"summary.json says status={summary.get('status')!r}: {summary.get('error', '')}"
            )
        values = []
        for metric in metrics:
            if metric not in summary:
                keys = ", ".join(sorted(k for k, v in summary.items() if isinstance(v, (int, float))))
                raise TrialFailed(f"summary.json has no {metric!r}; it has: {keys}")
            value = float(summary[metric])
            if not math.isfinite(value):
                raise TrialFailed(f"{metric} = {value}")
            values.append(value)
        return values


def read_metric_column(path: Path, column: str) -> list[tuple[int, float]]:
    """(step, value) for every row of a metrics.csv that has a value in ``column``.

    The file is read whole each time: the run-record logger rewrites it with a wider header
    when new metric names appear, so byte offsets are not stable. A last line without its
    newline is still being written and is skipped, so a half-written number is never reported.
    """
    try:
        text = path.read_text()
    except OSError:  # not written yet
        return []
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    values = []
    for row in csv.DictReader(io.StringIO(text)):
        try:
            values.append((int(float(row["step"])), float(row[column])))
        except (KeyError, TypeError, ValueError):  # a row without this metric (a training step)
            continue
    return values


class _NotAvailableYet:
    name = ""
    config_name = ""
    missing = ""

    def __init__(self, definition: SweepDefinition) -> None:
        raise SweepConfigError(
            f"{definition.path}: command={self.name} is not available yet: {self.missing} "
            f"Only command=train sweeps run today."
        )


class EvaluateCommand(_NotAvailableYet):
    """Scores a fixed checkpoint with ``python -m lit_illada.evaluate`` (sampler, steps, ...).

    To add: argv ``-m lit_illada.evaluate ckpt=... output=<sweep dir>/runs/<name>/results.json``,
    config_name ``evaluate``, and results flattened from results.json as ``<task>/<metric>``.
    """

    name = "evaluate"
    config_name = "evaluate"
    missing = (
        "the sweep driver does not yet run `python -m lit_illada.evaluate` or read its results.json "
        "into trial values."
    )


class TrainThenEvaluateCommand(_NotAvailableYet):
    """Trains (e.g. SFT from a base checkpoint), then evaluates its checkpoints.

    To add: train as TrainCommand does, then evaluate each checkpoint that ``evaluate.every``
    names (``epoch`` needs train to keep one checkpoint per epoch), reporting each score as an
    intermediate value and the best as the objective.
    """

    name = "train_then_evaluate"
    config_name = "train"
    missing = (
        "the sweep driver does not yet evaluate a trial's checkpoints with `python -m lit_illada.evaluate`, "
        "and train keeps no per-epoch checkpoints for `evaluate.every: epoch`."
    )


COMMANDS: dict[str, type] = {
    cls.name: cls for cls in (TrainCommand, EvaluateCommand, TrainThenEvaluateCommand)
}


def build_command(definition: SweepDefinition) -> TrainCommand:
    if definition.command not in COMMANDS:
        raise SweepConfigError(
            f"{definition.path}: command={definition.command!r}: choose one of {', '.join(COMMANDS)}"
        )
    return COMMANDS[definition.command](definition)
