"""Search dimensions, keyed by a Hydra override key of the train config.

    noise:           {type: categorical, choices: [linear, cosine]}     # a config group option
    model.n_kv_heads: {type: categorical, choices: [4, 2]}              # any config value
    optimizer.lr:        {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
    trainer.max_steps: {type: int, low: 100, high: 400, step: 100}
    sampler.threshold: {type: float, low: 0.5, high: 0.99, when: {sampler: threshold}}

The Optuna parameter name is the override key, so a trial's params read as the overrides it
ran with. ``when`` makes a dimension conditional on the value of an earlier one (its key
only exists in some config group options); conditional spaces rule out the grid sampler.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import optuna

from lit_illada.sweeping.errors import SweepConfigError

Scalar = str | int | float | bool | None


def format_value(value: Scalar) -> str:
    """A value as Hydra's override grammar reads it back.

    Strings go in verbatim, so a choice such as "[0.9,0.95]" is parsed by Hydra as a list.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # shortest round-trip form; Hydra parses 1e-05 and inf as floats
    return str(value)


@dataclass(frozen=True)
class Dimension:
    key: str
    when: dict[str, tuple[Scalar, ...]] = field(default_factory=dict)

    def suggest(self, trial: optuna.Trial) -> Scalar:
        raise NotImplementedError

    def candidates(self) -> list[Scalar]:
        """Values that the config check composes: every choice, or both ends of a range."""
        raise NotImplementedError

    def grid_values(self) -> list[Scalar]:
        raise SweepConfigError(f"space.{self.key}: the grid sampler needs categorical or int dimensions")

    def active(self, assignment: dict[str, Scalar]) -> bool:
        return all(assignment.get(key) in allowed for key, allowed in self.when.items())

    def override(self, value: Scalar) -> str:
        return f"{self.key}={format_value(value)}"

    def describe(self) -> dict[str, Any]:
        """A plain dict that identifies the dimension (stored with the study)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Categorical(Dimension):
    choices: tuple[Scalar, ...] = ()

    def suggest(self, trial: optuna.Trial) -> Scalar:
        return trial.suggest_categorical(self.key, list(self.choices))

    def candidates(self) -> list[Scalar]:
        return list(self.choices)

    def grid_values(self) -> list[Scalar]:
        return list(self.choices)

    def describe(self) -> dict[str, Any]:
        return {"type": "categorical", "choices": list(self.choices)}


@dataclass(frozen=True)
class IntRange(Dimension):
    low: int = 0
    high: int = 0
    step: int = 1
    log: bool = False

    def suggest(self, trial: optuna.Trial) -> Scalar:
        return trial.suggest_int(self.key, self.low, self.high, step=self.step, log=self.log)

    def candidates(self) -> list[Scalar]:
        return [self.low, self.high]

    def grid_values(self) -> list[Scalar]:
        if self.log:
            return super().grid_values()
        return list(range(self.low, self.high + 1, self.step))

    def describe(self) -> dict[str, Any]:
        return {"type": "int", "low": self.low, "high": self.high, "step": self.step, "log": self.log}


@dataclass(frozen=True)
class FloatRange(Dimension):
    low: float = 0.0
    high: float = 0.0
    step: float | None = None
    log: bool = False

    def suggest(self, trial: optuna.Trial) -> Scalar:
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)

    def candidates(self) -> list[Scalar]:
        return [self.low, self.high]

    def describe(self) -> dict[str, Any]:
        return {"type": "float", "low": self.low, "high": self.high, "step": self.step, "log": self.log}


KINDS: dict[str, type[Dimension]] = {"categorical": Categorical, "int": IntRange, "float": FloatRange}


class SearchSpace:
    """The ordered dimensions of a sweep; conditions may only refer to earlier dimensions."""

    def __init__(self, dimensions: list[Dimension]) -> None:
        self.dimensions = dimensions

    @property
    def keys(self) -> list[str]:
        return [dim.key for dim in self.dimensions]

    @property
    def conditional(self) -> bool:
        return any(dim.when for dim in self.dimensions)

    def suggest(self, trial: optuna.Trial) -> dict[str, Scalar]:
        """Ask the trial for a value in every active dimension, in order."""
        assignment: dict[str, Scalar] = {}
        for dim in self.dimensions:
            if dim.active(assignment):
                assignment[dim.key] = dim.suggest(trial)
        return assignment

    def overrides(self, assignment: dict[str, Scalar]) -> list[str]:
        by_key = {dim.key: dim for dim in self.dimensions}
        return [by_key[key].override(value) for key, value in assignment.items()]

    def grid(self) -> dict[str, list[Scalar]]:
        if self.conditional:
            raise SweepConfigError("the grid sampler needs an unconditional space; drop `when` or use tpe")
        return {dim.key: dim.grid_values() for dim in self.dimensions}

    def grid_size(self) -> int:
        return math.prod(len(values) for values in self.grid().values())

    def probe_assignments(self):
        """(dimension, value, assignment) for every candidate value of every dimension.

        The other dimensions take their first candidate, except those that a ``when``
        condition of the probed dimension pins, so each candidate is composed in a context
        where it is active.
        """
        for dim in self.dimensions:
            for value in dim.candidates():
                assignment: dict[str, Scalar] = {}
                for other in self.dimensions:
                    if other is dim:
                        assignment[other.key] = value
                    elif other.key in dim.when:
                        assignment[other.key] = dim.when[other.key][0]
                    elif other.active(assignment):
                        assignment[other.key] = other.candidates()[0]
                active = {key: v for key, v in assignment.items() if self._by_key(key).active(assignment)}
                yield dim, value, active

    def _by_key(self, key: str) -> Dimension:
        return next(dim for dim in self.dimensions if dim.key == key)

    def describe(self) -> dict[str, Any]:
        return {
            dim.key: {
                **dim.describe(),
                **({"when": {k: list(v) for k, v in dim.when.items()}} if dim.when else {}),
            }
            for dim in self.dimensions
        }
