"""The Optuna study: sampler, pruner, trial budget, and the study itself (created once, resumed after)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import optuna
from optuna.pruners import BasePruner, MedianPruner, NopPruner
from optuna.samplers import BaseSampler, GridSampler, NSGAIISampler, RandomSampler, TPESampler
from optuna.storages import BaseStorage

from lit_illada.sweeping.definition import SweepDefinition
from lit_illada.sweeping.errors import SweepConfigError

# name -> builder(definition, arguments from the sweep file). The grid is the one sampler
# that needs the space up front: it enumerates every point before the first trial.
SAMPLERS: dict[str, Callable[[SweepDefinition, dict[str, Any]], BaseSampler]] = {
    "tpe": lambda definition, kwargs: TPESampler(**kwargs),
    "random": lambda definition, kwargs: RandomSampler(**kwargs),
    "nsga2": lambda definition, kwargs: NSGAIISampler(**kwargs),
    "grid": lambda definition, kwargs: GridSampler(definition.space.grid(), **kwargs),
}
PRUNERS: dict[str, Callable[[SweepDefinition, dict[str, Any]], BasePruner]] = {
    "none": lambda definition, kwargs: NopPruner(**kwargs),
    "median": lambda definition, kwargs: MedianPruner(**kwargs),
}


def _build(kind: str, registry: dict, definition: SweepDefinition):
    spec = getattr(definition, kind)
    name = spec["type"]
    if name not in registry:
        raise SweepConfigError(
            f"{definition.path}: {kind}.type={name!r}: choose one of {', '.join(registry)}"
        )
    try:
        return registry[name](definition, {k: v for k, v in spec.items() if k != "type"})
    except TypeError as err:  # an argument this sampler or pruner does not take
        raise SweepConfigError(f"{definition.path}: {kind}: {err}") from None
    except SweepConfigError as err:  # the space does not suit this sampler (grid)
        raise SweepConfigError(f"{definition.path}: {err}") from None


def build_sampler(definition: SweepDefinition) -> BaseSampler:
    return _build("sampler", SAMPLERS, definition)


def build_pruner(definition: SweepDefinition) -> BasePruner:
    return _build("pruner", PRUNERS, definition)


def resolve_n_trials(definition: SweepDefinition, override: int | None) -> int:
    """The number of finished trials the study should hold (complete, pruned or failed)."""
    n_trials = override if override is not None else definition.n_trials
    is_grid = definition.sampler["type"] == "grid"
    if n_trials is None:
        if not is_grid:
            raise SweepConfigError(f"{definition.path}: n_trials: required unless sampler is grid")
        return definition.space.grid_size()
    if n_trials <= 0:
        raise SweepConfigError(f"n_trials={n_trials}: must be > 0")
    size = definition.space.grid_size() if is_grid else None
    if size is not None and n_trials > size:
        raise SweepConfigError(
            f"n_trials={n_trials} exceeds the {size} points of the grid in {definition.path}; "
            f"the grid sampler would repeat points. Use n_trials<={size}"
        )
    return n_trials


def open_study(
    storage: BaseStorage, definition: SweepDefinition, study_name: str, preset: str | None
) -> optuna.Study:
    """Create the study, or resume it when it exists and was made by the same sweep.

    The first driver stores the sweep's identity (space, objectives, what trials train) in the
    study; a later run with a different one would mix incomparable trials, so it is refused.
    """
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        directions=[o.direction for o in definition.objectives],
        sampler=build_sampler(definition),
        pruner=build_pruner(definition),
        load_if_exists=True,
    )
    wanted = [o.direction for o in definition.objectives]
    found = [d.name.lower() for d in study.directions]
    if found != wanted:
        raise SweepConfigError(
            f"study {study_name!r} exists with directions {found}, but {definition.path} asks for "
            f"{wanted}; use another study=<name>"
        )
    identity = json.loads(json.dumps(definition.identity(preset)))  # as the storage returns it
    stored = study.user_attrs.get("sweep")
    if stored is None:
        study.set_user_attr("sweep", identity)
    elif stored != identity:
        changed = sorted(
            key for key in identity.keys() | stored.keys() if identity.get(key) != stored.get(key)
        )
        raise SweepConfigError(
            f"study {study_name!r} was started with a different {', '.join(changed)} than {definition.path} "
            f"(preset={preset}) gives now; resuming would mix incomparable trials. Restore the sweep "
            f"file, or start a new study with study=<another name>"
        )
    return study
