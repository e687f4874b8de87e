"""A sweep file (``sweeps/<name>.yaml``): found by name or path, parsed and checked before anything runs.

    study: objective               # Optuna study name; the sweep folder is <sweeps_root>/<study>/
    command: train                 # train | evaluate | train_then_evaluate (see commands.py)
    n_trials: 12                   # finished trials the study should hold; null = the whole grid
    sampler: {_target_: optuna.samplers.GridSampler}   # any Optuna sampler, with its arguments
    pruner: {_target_: optuna.pruners.MedianPruner, n_startup_trials: 2}   # any Optuna pruner
    required: {init_from: the base model}   # keys every trial needs (given after `--`), and why
    objectives:                    # one (single-objective) or more (Pareto front)
      - {metric: best/val/nll, direction: minimize}
    intermediate: val/nll          # metrics.csv column reported while a trial runs (pruning)
    space: {...}                   # search dimensions, see below
    fixed: [trainer.max_steps=400] # train overrides for every trial
    presets:                       # more fixed overrides, chosen with preset=<name>
      tiny: [model.n_layers=2, ...]
    evaluate: {...}                # evaluate commands only: see commands.py

The search dimensions are keyed by a Hydra override key of the train config:

    noise:           {type: categorical, choices: [linear, cosine]}     # a config group option
    model.n_kv_heads: {type: categorical, choices: [4, 2]}              # any config value
    optimizer.lr:        {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
    trainer.max_steps: {type: int, low: 100, high: 400, step: 100}
    sampler.threshold: {type: float, low: 0.5, high: 0.99, when: {sampler: threshold}}

The sampler and pruner are built as Hydra builds everything else (``_target_`` plus the class's
arguments, see study.py); the grid sampler gets its grid from ``space``. ``{type: tpe|random|
nsga2|grid}`` and ``{type: none|median}`` are shorthands for the common ones.

The Optuna parameter name is the override key, so a trial's params read as the overrides it
ran with. ``when`` makes a dimension conditional on the value of an earlier one (its key
only exists in some config group options); conditional spaces rule out the grid sampler.

Every error names the file and the key, and says what is allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from omegaconf import OmegaConf

from lit_illada.config.paths import SWEEPS_DIR
from lit_illada.sweeping.errors import SweepConfigError

# -- the search space ------------------------------------------------------------------------------

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
            raise SweepConfigError(
                "the grid sampler needs an unconditional space; drop `when` or use another sampler, "
                "e.g. {_target_: optuna.samplers.TPESampler}"
            )
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


# -- the sweep file --------------------------------------------------------------------------------

DIRECTIONS = ("minimize", "maximize")
TOP_LEVEL = (
    "study", "command", "n_trials", "sampler", "pruner", "required", "objectives", "intermediate",
    "space", "fixed", "presets", "evaluate",
)  # fmt: skip
REQUIRED = ("command", "objectives", "space")
# The driver names every trial's run and puts it in the sweep folder: nobody else may set these.
MANAGED_KEYS = ("name", "runs_root")
# ``{type: <name>}``: the samplers and pruners most sweeps use, by a short name.
SHORTHANDS = {
    "sampler": {
        "tpe": "optuna.samplers.TPESampler",
        "random": "optuna.samplers.RandomSampler",
        "nsga2": "optuna.samplers.NSGAIISampler",
        "grid": "optuna.samplers.GridSampler",
    },
    "pruner": {"none": "optuna.pruners.NopPruner", "median": "optuna.pruners.MedianPruner"},
}
DEFAULT_COMPONENTS = {"sampler": "tpe", "pruner": "none"}


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: str


@dataclass(frozen=True)
class SweepDefinition:
    path: Path
    study: str
    command: str
    n_trials: int | None
    sampler: dict[str, Any]  # {_target_: <class>, **arguments}
    pruner: dict[str, Any]
    objectives: list[Objective]
    intermediate: str | None
    space: SearchSpace
    fixed: list[str]
    presets: dict[str, list[str]]
    evaluate: dict[str, Any] = field(default_factory=dict)
    required: dict[str, str] = field(default_factory=dict)  # key -> what it is (init_from -> the base model)

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    def fixed_overrides(self, preset: str | None) -> list[str]:
        """The sweep's fixed overrides, then the preset's (later overrides win in Hydra)."""
        if preset is None:
            return list(self.fixed)
        if preset not in self.presets:
            known = ", ".join(self.presets) or "none"
            raise SweepConfigError(f"preset={preset}: {self.path} has no such preset; it has: {known}")
        return [*self.fixed, *self.presets[preset]]

    def identity(self, preset: str | None, trial_overrides: list[str]) -> dict[str, Any]:
        """What makes two runs of this sweep the same study: a resumed study must match it.

        n_trials, the sampler and the pruner may change between runs (extend a finished sweep,
        switch from random to TPE); the space, the objectives and what each trial trains may not:
        the fixed overrides and those after ``--`` (``ckpt=`` names the model a study compares).
        """
        return {
            "command": self.command,
            "space": self.space.describe(),
            "objectives": [[o.metric, o.direction] for o in self.objectives],
            "fixed": self.fixed_overrides(preset),
            "overrides": list(trial_overrides),
        }


def find_sweep_file(sweep: str, sweeps_dir: str | Path | None = None) -> Path:
    """``sweep=objective`` names ``<sweeps_dir>/objective.yaml``; a path to a yaml file also works."""
    as_path = Path(sweep)
    if as_path.suffix in (".yaml", ".yml") or len(as_path.parts) > 1:
        if not as_path.is_file():
            raise SweepConfigError(f"sweep={sweep}: no such file")
        return as_path
    folder = Path(sweeps_dir) if sweeps_dir else SWEEPS_DIR
    path = folder / f"{sweep}.yaml"
    if not path.is_file():
        available = sorted(p.stem for p in folder.glob("*.yaml"))
        raise SweepConfigError(
            f"sweep={sweep}: no {path}; available sweeps in {folder}: {', '.join(available) or 'none'}"
        )
    return path


def load_definition(path: Path) -> SweepDefinition:
    # OmegaConf's loader, not yaml.safe_load: PyYAML reads 1e-4 (no dot) as a string.
    try:
        raw = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except Exception as err:  # a yaml syntax error or a bad interpolation
        raise SweepConfigError(f"{path}: cannot read the sweep file: {err}") from err
    if not isinstance(raw, dict):
        raise SweepConfigError(f"{path}: expected a mapping of {', '.join(TOP_LEVEL)}")
    return _Parser(path).parse(raw)


class _Parser:
    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, key: str, message: str) -> SweepConfigError:
        return SweepConfigError(f"{self.path}: {key}: {message}")

    def parse(self, raw: dict[str, Any]) -> SweepDefinition:
        unknown = sorted(set(raw) - set(TOP_LEVEL))
        if unknown:
            raise self.error(unknown[0], f"unknown key; allowed: {', '.join(TOP_LEVEL)}")
        missing = [key for key in REQUIRED if raw.get(key) is None]
        if missing:
            raise self.error(missing[0], "required")
        objectives = self.objectives(raw["objectives"])
        intermediate = self.optional_text(raw, "intermediate")
        if intermediate and len(objectives) > 1:
            raise self.error("intermediate", "Optuna reports intermediate values for one objective only")
        definition = SweepDefinition(
            path=self.path,
            study=self.optional_text(raw, "study") or self.path.stem,
            command=self.text(raw, "command"),
            n_trials=self.n_trials(raw.get("n_trials")),
            sampler=self.component(raw, "sampler"),
            pruner=self.component(raw, "pruner"),
            objectives=objectives,
            intermediate=intermediate,
            space=self.space(raw["space"]),
            fixed=self.overrides("fixed", raw.get("fixed") or []),
            presets=self.presets(raw.get("presets") or {}),
            evaluate=self.mapping(raw, "evaluate"),
            required=self.required(raw.get("required")),
        )
        self.check_no_overlap(definition)
        return definition

    # -- pieces --------------------------------------------------------------------------------

    def text(self, raw: dict, key: str) -> str:
        value = raw.get(key)
        if not isinstance(value, str) or not value:
            raise self.error(key, f"expected a non-empty string, got {value!r}")
        return value

    def optional_text(self, raw: dict, key: str) -> str | None:
        return None if raw.get(key) is None else self.text(raw, key)

    def mapping(self, raw: dict, key: str) -> dict:
        value = raw.get(key) or {}
        if not isinstance(value, dict):
            raise self.error(key, f"expected a mapping, got {value!r}")
        return value

    def n_trials(self, value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.error(
                "n_trials", f"expected a positive integer (or null for the whole grid), got {value!r}"
            )
        return value

    def component(self, raw: dict, key: str) -> dict[str, Any]:
        """``{_target_: <class>, **arguments}``, a ``{type: <shorthand>, ...}`` spelled out; the
        class is imported and checked where it is built (study.py)."""
        value = raw.get(key) or {"type": DEFAULT_COMPONENTS[key]}
        shorthands = SHORTHANDS[key]
        example = f"{{_target_: {shorthands[DEFAULT_COMPONENTS[key]]}, ...arguments}}"
        if not isinstance(value, dict):
            raise self.error(key, f"expected {example}, got {value!r}")
        if "type" in value and "_target_" not in value:
            name = value["type"]
            if name not in shorthands:
                raise self.error(
                    f"{key}.type", f"{name!r}: choose one of {', '.join(shorthands)}, or name any Optuna "
                    f"{key} class: {key}: {{_target_: optuna.{key}s.<Class>, ...arguments}}"
                )
            value = {"_target_": shorthands[name], **{k: v for k, v in value.items() if k != "type"}}
        if not isinstance(value.get("_target_"), str) or not value["_target_"]:
            raise self.error(key, f"expected {example}, got {value!r}")
        return value

    def required(self, value: Any) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise self.error("required", f"expected a mapping of key -> what it is, got {value!r}")
        return {str(key): text for key, text in value.items()}

    def objectives(self, value: Any) -> list[Objective]:
        if not isinstance(value, list) or not value:
            raise self.error(
                "objectives", "expected a list of {metric: <summary key>, direction: minimize|maximize}"
            )
        parsed = []
        for i, item in enumerate(value):
            where = f"objectives[{i}]"
            if not isinstance(item, dict) or set(item) != {"metric", "direction"}:
                raise self.error(where, f"expected {{metric: ..., direction: ...}}, got {item!r}")
            if item["direction"] not in DIRECTIONS:
                raise self.error(
                    f"{where}.direction", f"{item['direction']!r}: choose one of {', '.join(DIRECTIONS)}"
                )
            parsed.append(Objective(str(item["metric"]), item["direction"]))
        return parsed

    def overrides(self, key: str, value: Any) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, f"expected a list of override strings (key=value), got {value!r}")
        return list(value)

    def presets(self, value: Any) -> dict[str, list[str]]:
        if not isinstance(value, dict):
            raise self.error("presets", f"expected a mapping of name -> list of overrides, got {value!r}")
        return {name: self.overrides(f"presets.{name}", overrides) for name, overrides in value.items()}

    def space(self, value: Any) -> SearchSpace:
        if not isinstance(value, dict) or not value:
            raise self.error("space", "expected a mapping of override key -> {type: ..., ...}")
        dimensions: list[Dimension] = []
        for key, spec in value.items():
            dimensions.append(self.dimension(str(key), spec, earlier=[d.key for d in dimensions]))
        return SearchSpace(dimensions)

    def dimension(self, key: str, spec: Any, earlier: list[str]) -> Dimension:
        where = f"space.{key}"
        if not isinstance(spec, dict) or spec.get("type") not in KINDS:
            kind = spec.get("type") if isinstance(spec, dict) else spec
            raise self.error(where, f"type={kind!r}: choose one of {', '.join(KINDS)}")
        args = {k: v for k, v in spec.items() if k != "type"}
        args["when"] = self.when(where, args.pop("when", None), earlier)
        if spec["type"] == "categorical":
            args["choices"] = self.choices(where, args.get("choices"))
        else:
            self.bounds(where, args)
        try:
            return KINDS[spec["type"]](key=key, **args)
        except TypeError as err:  # an argument the dimension does not take
            raise self.error(
                where, f"{err}; a {spec['type']} dimension takes {_fields(KINDS[spec['type']])}"
            ) from None

    def when(self, where: str, value: Any, earlier: list[str]) -> dict[str, tuple]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(f"{where}.when", f"expected {{earlier key: value or [values]}}, got {value!r}")
        for key in value:
            if key not in earlier:
                raise self.error(f"{where}.when", f"{key!r} is not a dimension listed before {where}")
        return {k: tuple(v) if isinstance(v, list) else (v,) for k, v in value.items()}

    def choices(self, where: str, value: Any) -> tuple:
        if not isinstance(value, list) or not value:
            raise self.error(f"{where}.choices", f"expected a non-empty list, got {value!r}")
        for choice in value:
            if isinstance(choice, (list, dict)):
                raise self.error(
                    f"{where}.choices",
                    f'{choice!r}: choices are scalars; write a list as a string, e.g. "[0.9,0.95]"',
                )
        return tuple(value)

    def bounds(self, where: str, args: dict) -> None:
        low, high = args.get("low"), args.get("high")
        for name, bound in (("low", low), ("high", high)):
            if isinstance(bound, bool) or not isinstance(bound, (int, float)):
                raise self.error(f"{where}.{name}", f"expected a number, got {bound!r}")
        if low > high:
            raise self.error(where, f"low={low} > high={high}")
        if args.get("log") and low <= 0:
            raise self.error(f"{where}.low", f"log=true needs low > 0, got {low}")

    def check_no_overlap(self, definition: SweepDefinition) -> None:
        """A searched key that is also fixed would be silently overwritten by one of the two."""
        fixed = [*definition.fixed, *(o for overrides in definition.presets.values() for o in overrides)]
        fixed_keys = {override_key(o) for o in fixed}
        for key in definition.space.keys:
            if override_key(key) in fixed_keys:
                raise self.error(
                    f"space.{key}", "is also set in fixed or a preset; remove it from one of them"
                )
        for key in MANAGED_KEYS:
            if key in fixed_keys or key in definition.space.keys:
                raise self.error(
                    key, "is set by the sweep for every trial (<study>-t<number>, <sweep folder>/runs)"
                )


def override_key(override: str) -> str:
    """``+trainer.max_steps=4`` -> ``trainer.max_steps`` (the prefix says how, not what)."""
    return override.split("=", 1)[0].lstrip("+~")


def _fields(cls: type) -> str:
    return ", ".join(name for name in cls.__dataclass_fields__ if name != "key")
