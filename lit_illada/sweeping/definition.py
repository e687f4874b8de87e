"""A sweep file (``sweeps/<name>.yaml``), parsed and checked before anything runs.

    study: objective               # Optuna study name; the sweep folder is <sweeps_root>/<study>/
    command: train                 # train | evaluate | train_then_evaluate (see commands.py)
    n_trials: 12                   # finished trials the study should hold; null = the whole grid
    sampler: {type: grid}          # tpe | grid | nsga2 | random, plus the sampler's own arguments
    pruner: {type: none}           # none | median, plus the pruner's own arguments
    objectives:                    # one (single-objective) or more (Pareto front)
      - {metric: best/val/nll, direction: minimize}
    intermediate: val/nll          # metrics.csv column reported while a trial runs (pruning)
    space: {...}                   # see space.py
    fixed: [trainer.max_steps=400] # train overrides for every trial
    presets:                       # more fixed overrides, chosen with preset=<name>
      tiny: [model.n_layers=2, ...]
    evaluate: {...}                # evaluate commands only: see commands.py

Every error names the file and the key, and says what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from lit_illada.sweeping.errors import SweepConfigError
from lit_illada.sweeping.space import KINDS, Dimension, SearchSpace

DIRECTIONS = ("minimize", "maximize")
TOP_LEVEL = (
    "study", "command", "n_trials", "sampler", "pruner", "objectives", "intermediate",
    "space", "fixed", "presets", "evaluate",
)  # fmt: skip
REQUIRED = ("command", "objectives", "space")
# The driver names every trial's run and puts it in the sweep folder: nobody else may set these.
MANAGED_KEYS = ("name", "runs_root")


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
    sampler: dict[str, Any]
    pruner: dict[str, Any]
    objectives: list[Objective]
    intermediate: str | None
    space: SearchSpace
    fixed: list[str]
    presets: dict[str, list[str]]
    evaluate: dict[str, Any] = field(default_factory=dict)

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

    def identity(self, preset: str | None) -> dict[str, Any]:
        """What makes two runs of this sweep the same study: a resumed study must match it.

        n_trials, the sampler and the pruner may change between runs (extend a finished sweep,
        switch from random to TPE); the space, the objectives and what each trial trains may not.
        """
        return {
            "command": self.command,
            "space": self.space.describe(),
            "objectives": [[o.metric, o.direction] for o in self.objectives],
            "fixed": self.fixed_overrides(preset),
        }


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
            sampler=self.component(raw, "sampler", default="tpe"),
            pruner=self.component(raw, "pruner", default="none"),
            objectives=objectives,
            intermediate=intermediate,
            space=self.space(raw["space"]),
            fixed=self.overrides("fixed", raw.get("fixed") or []),
            presets=self.presets(raw.get("presets") or {}),
            evaluate=self.mapping(raw, "evaluate"),
        )
        if definition.pruner["type"] != "none" and definition.multi_objective:
            raise self.error("pruner", "Optuna cannot prune multi-objective trials; use {type: none}")
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

    def component(self, raw: dict, key: str, default: str) -> dict[str, Any]:
        """``{type: name, **arguments}``; the names are checked where they are built (study.py)."""
        value = raw.get(key) or {"type": default}
        if not isinstance(value, dict) or not isinstance(value.get("type"), str):
            raise self.error(key, f"expected {{type: <name>, ...arguments}}, got {value!r}")
        return value

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
