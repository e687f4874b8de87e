"""What a trial runs, and where it leaves its metrics.

A command turns a trial's overrides into one or more stages (each a subprocess, run in
order), knows which Hydra config those overrides compose against, and reads the trial's
intermediate values and final metrics from its run record:

- ``train``: ``python -m lit_illada.train``; values from summary.json, intermediate values
  from metrics.csv rows (per validation).
- ``evaluate``: ``python -m lit_illada.evaluate`` on a fixed checkpoint (``ckpt=`` after
  ``--``); values from its results.json as ``<task>/<metric>``.
- ``train_then_evaluate``: train, then evaluate the checkpoint of every epoch (or only the
  last) into ``results/epoch-<k>.json``; each epoch's score is an intermediate value (so a
  pruner stops a trial that falls behind before its remaining epochs are scored), and the
  trial's values are those of its best epoch.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lit_illada.checkpoints.run_record import RunRecord, epoch_files
from lit_illada.sweeping.definition import Objective, SweepDefinition, override_key
from lit_illada.sweeping.errors import SweepConfigError, TrialFailed


@dataclass(frozen=True)
class Stage:
    label: str  # names the stage's log files: logs/<run>.out for the first, <run>-<label>.out after
    argv: list[str]
    prune_after: bool = False  # ask the pruner once it has exited (its value arrives at the end)


class TrainCommand:
    """``python -m lit_illada.train``; its run record holds summary.json and metrics.csv."""

    name = "train"
    config_name = "train"  # conf/train.yaml: what the overrides are checked against
    required: dict[str, str] = {}  # keys every trial needs a value for (besides the sweep file's `required:`)

    def __init__(self, definition: SweepDefinition, preset: str | None = None) -> None:
        if definition.evaluate:
            raise SweepConfigError(
                f"{definition.path}: evaluate: only command=train_then_evaluate uses it (command={self.name})"
            )

    def stages(
        self, launcher: list[str], run_name: str, runs_root: Path, overrides: list[str]
    ) -> Iterator[Stage]:
        yield Stage("train", _train_argv(launcher, run_name, runs_root, overrides))

    @staticmethod
    def run_dir(runs_root: Path, run_name: str) -> Path:
        return runs_root / run_name

    def intermediate_values(self, run_dir: Path, metric: str) -> list[tuple[int, float]]:
        return read_metric_column(RunRecord(run_dir).metrics_csv, metric)

    def results(self, run_dir: Path, objectives: list[Objective]) -> list[float]:
        """The objective values from summary.json; a trial without them failed."""
        summary = RunRecord(run_dir).read_summary()
        if not summary:
            raise TrialFailed(f"no summary.json in {run_dir}")
        if summary.get("status") != "finished":
            raise TrialFailed(
                f"summary.json says status={summary.get('status')!r}: {summary.get('error', '')}"
            )
        return _pick(summary, objectives, f"{run_dir}/summary.json")


class EvaluateCommand:
    """Scores one fixed checkpoint (given as ``-- ckpt=<run>``) per trial: sampler, steps, ..."""

    name = "evaluate"
    config_name = "evaluate"
    required = {"ckpt": "command=evaluate scores one checkpoint"}

    def __init__(self, definition: SweepDefinition, preset: str | None = None) -> None:
        if definition.evaluate:
            raise SweepConfigError(
                f"{definition.path}: evaluate: not used by command=evaluate (its space and fixed "
                f"overrides are already evaluate overrides)"
            )
        if definition.intermediate:
            raise SweepConfigError(
                f"{definition.path}: intermediate: an evaluation reports only its final results; drop it"
            )
        _refuse_output_key(definition)

    def stages(
        self, launcher: list[str], run_name: str, runs_root: Path, overrides: list[str]
    ) -> Iterator[Stage]:
        output = self.run_dir(runs_root, run_name) / "results.json"
        yield Stage("evaluate", [*launcher, "-m", "lit_illada.evaluate", *overrides, f"output={output}"])

    @staticmethod
    def run_dir(runs_root: Path, run_name: str) -> Path:
        return runs_root / run_name

    def intermediate_values(self, run_dir: Path, metric: str) -> list[tuple[int, float]]:
        return []

    def results(self, run_dir: Path, objectives: list[Objective]) -> list[float]:
        path = run_dir / "results.json"
        return _pick(read_results(path), objectives, str(path))


class TrainThenEvaluateCommand:
    """Trains (e.g. SFT from a base checkpoint), then evaluates its checkpoints one by one."""

    name = "train_then_evaluate"
    config_name = "train"
    required: dict[str, str] = {}
    EVERY = ("epoch", "end")

    def __init__(self, definition: SweepDefinition, preset: str | None = None) -> None:
        spec = dict(definition.evaluate)
        unknown = sorted(set(spec) - {"every", "overrides", "presets"})
        if unknown:
            raise SweepConfigError(
                f"{definition.path}: evaluate.{unknown[0]}: unknown; allowed: every, overrides, presets"
            )
        self.every = spec.get("every", "epoch")
        if self.every not in self.EVERY:
            raise SweepConfigError(
                f"{definition.path}: evaluate.every={self.every!r}: choose one of {self.EVERY}"
            )
        self.overrides = [str(item) for item in spec.get("overrides") or []]
        if preset is not None:  # the sweep's preset= also shrinks the evaluation (e.g. fewer examples)
            self.overrides += [str(item) for item in (spec.get("presets") or {}).get(preset) or []]
        for override in self.overrides:
            if override_key(override) in ("ckpt", "output"):
                raise SweepConfigError(
                    f"{definition.path}: evaluate.overrides: {override}: "
                    f"the sweep sets {override_key(override)} "
                    f"(each checkpoint of the trial, and its results file); drop it"
                )
        self.directions = [o.direction for o in definition.objectives]

    def stages(
        self, launcher: list[str], run_name: str, runs_root: Path, overrides: list[str]
    ) -> Iterator[Stage]:
        run_dir = self.run_dir(runs_root, run_name)
        every_epoch = ["checkpoint.every_epoch=true"] if self.every == "epoch" else []
        yield Stage("train", _train_argv(launcher, run_name, runs_root, [*overrides, *every_epoch]))
        # Generated only now, after training: the epoch checkpoints exist.
        checkpoints = self._checkpoints(run_dir)
        for epoch, path in checkpoints:
            output = run_dir / "results" / f"epoch-{epoch}.json"
            if output.exists():  # a retried trial keeps the epochs already scored
                continue
            yield Stage(
                f"eval-epoch{epoch}",
                [*launcher, "-m", "lit_illada.evaluate", f"ckpt={path}", *self.overrides, f"output={output}"],
                prune_after=epoch != checkpoints[-1][0],  # the last epoch's score ends the trial anyway
            )

    def _checkpoints(self, run_dir: Path) -> list[tuple[int, Path]]:
        checkpoints = RunRecord(run_dir).checkpoints
        found = epoch_files(checkpoints, ".ckpt")
        if self.every == "end" or not found:
            last = RunRecord(run_dir).last_checkpoint
            if last is None:
                raise TrialFailed(f"training left no checkpoint in {checkpoints}")
            epoch = found[-1][0] if found else 1
            return [(epoch, last)]
        return found

    @staticmethod
    def run_dir(runs_root: Path, run_name: str) -> Path:
        return runs_root / run_name

    def epoch_results(self, run_dir: Path) -> list[tuple[int, dict[str, float]]]:
        return [(epoch, read_results(path)) for epoch, path in epoch_files(run_dir / "results", ".json")]

    def intermediate_values(self, run_dir: Path, metric: str) -> list[tuple[int, float]]:
        return [(epoch, values[metric]) for epoch, values in self.epoch_results(run_dir) if metric in values]

    def results(self, run_dir: Path, objectives: list[Objective]) -> list[float]:
        """The best epoch's values (by the first objective; a Pareto front has no single best)."""
        scored = self.epoch_results(run_dir)
        if not scored:
            raise TrialFailed(f"no results/epoch-*.json in {run_dir}")
        first = objectives[0]
        candidates = [(epoch, values) for epoch, values in scored if first.metric in values]
        if not candidates:
            _pick(scored[-1][1], objectives, f"{run_dir}/results")  # raises, naming what exists
        pick = max if first.direction == "maximize" else min
        epoch, values = pick(candidates, key=lambda item: item[1][first.metric])
        return _pick(values, objectives, f"{run_dir}/results/epoch-{epoch}.json")


def _train_argv(launcher: list[str], run_name: str, runs_root: Path, overrides: list[str]) -> list[str]:
    return [*launcher, "-m", "lit_illada.train", f"name={run_name}", f"runs_root={runs_root}", *overrides]


def _refuse_output_key(definition: SweepDefinition) -> None:
    keys = [override_key(o) for o in definition.fixed] + list(definition.space.keys)
    if "output" in keys:
        raise SweepConfigError(
            f"{definition.path}: output: the sweep writes each trial's results to "
            f"<sweep>/runs/<trial>/results.json; drop it"
        )


def read_results(path: Path) -> dict[str, float]:
    """results.json of ``python -m lit_illada.evaluate``, flattened to ``<task>/<metric>``."""
    try:
        results = json.loads(path.read_text())
    except FileNotFoundError:
        raise TrialFailed(f"no {path}: the evaluation wrote no results") from None
    except json.JSONDecodeError as err:
        raise TrialFailed(
            f"{path} is not valid JSON ({err}); was the evaluation killed while writing?"
        ) from None
    return {
        f"{task}/{key}": float(value)
        for task, metrics in results.get("tasks", {}).items()
        for key, value in metrics.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }


def _pick(values: dict, objectives: list[Objective], where: str) -> list[float]:
    picked = []
    for objective in objectives:
        if objective.metric not in values:
            keys = ", ".join(sorted(k for k, v in values.items() if isinstance(v, (int, float))))
            raise TrialFailed(f"{where} has no {objective.metric!r}; it has: {keys}")
        value = float(values[objective.metric])
        if not math.isfinite(value):
            raise TrialFailed(f"{objective.metric} = {value}")
        picked.append(value)
    return picked


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


COMMANDS: dict[str, type] = {
    cls.name: cls for cls in (TrainCommand, EvaluateCommand, TrainThenEvaluateCommand)
}
Command = TrainCommand | EvaluateCommand | TrainThenEvaluateCommand


def build_command(definition: SweepDefinition, preset: str | None = None) -> Command:
    if definition.command not in COMMANDS:
        raise SweepConfigError(
            f"{definition.path}: command={definition.command!r}: choose one of {', '.join(COMMANDS)}"
        )
    return COMMANDS[definition.command](definition, preset)
