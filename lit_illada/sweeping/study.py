"""The Optuna study: storage, sampler, pruner, number of trials, and the study itself (created once,
resumed after).

``storage=`` names where the study lives:

- default: SQLite in the sweep folder, ``sqlite:///<sweeps_root>/<study>/study.db``;
- any SQLAlchemy database URL (``postgresql://...``) for workers on many nodes;
- ``journal:///path/to/file``: Optuna's journal file, for shared file systems where SQLite's
  locking is unreliable (NFS).

Database storages get Optuna's heartbeat: a running trial records one every
``heartbeat_interval`` seconds, and a trial whose driver died (SIGKILL, a lost node) goes
without for ``grace_period`` seconds; the next worker that looks marks it FAILED, or with
``retry_failed=k`` re-runs it with the same params (up to k times). Optuna has no heartbeat
for journal storage, so a journal study cannot tell a dead driver's trial from a live one
(see workers.py).
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc
from optuna.pruners import BasePruner, MedianPruner, NopPruner
from optuna.samplers import BaseSampler, GridSampler, NSGAIISampler, RandomSampler, TPESampler
from optuna.storages import BaseStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend, JournalStorage

from lit_illada.sweeping.definition import SweepDefinition
from lit_illada.sweeping.errors import SweepConfigError

# -- storage ---------------------------------------------------------------------------------------

JOURNAL_PREFIX = "journal://"


def default_storage_url(sweep_dir: Path) -> str:
    return f"sqlite:///{sweep_dir.resolve() / 'study.db'}"


def open_storage(
    url: str, heartbeat_interval: int | None, grace_period: int | None, retry_failed: int
) -> BaseStorage:
    try:
        if url.startswith(JOURNAL_PREFIX):
            return JournalStorage(JournalFileBackend(url.removeprefix(JOURNAL_PREFIX)))
        return _open_database(
            url,
            # SQLite: a worker waits for another's write instead of failing with "database is locked".
            engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            heartbeat_stale_trial_callback=(
                RetryHeartbeatStaleTrialCallback(max_retry=retry_failed) if retry_failed > 0 else None
            ),
        )
    except Exception as err:  # SQLAlchemy, a missing database driver, the file system: all say the same
        raise SweepConfigError(
            f"storage={url}: cannot open it ({type(err).__name__}: {' '.join(str(err).split())[:300]}). "
            f"Use sqlite:///<file>, a database URL, or journal:///<file> in an existing folder"
        ) from None


def _open_database(url: str, **kwargs) -> RDBStorage:
    """RDBStorage, retried while another worker creates the same new database.

    Workers started together (a SLURM array), or a driver and a reader of its study, all find
    no schema and all create it; the losers fail on the schema version's unique key or on a
    table that already exists. A moment later the schema is there to open.
    """
    for attempt in range(5):
        try:
            with warnings.catch_warnings():  # heartbeat_interval is an "experimental" argument
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(url, **kwargs)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError) as err:
            racing = isinstance(err, sqlalchemy.exc.IntegrityError) or "already exists" in str(err)
            if attempt == 4 or not racing:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def heartbeat_enabled(storage: BaseStorage) -> bool:
    return isinstance(storage, RDBStorage) and storage.heartbeat_interval is not None


# -- sampler, pruner, study ------------------------------------------------------------------------

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
