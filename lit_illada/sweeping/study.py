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
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from optuna.pruners import BasePruner, NopPruner
from optuna.samplers import BaseSampler, GridSampler
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

EXAMPLES = {"sampler": "optuna.samplers.TPESampler", "pruner": "optuna.pruners.MedianPruner"}
BASES = {"sampler": BaseSampler, "pruner": BasePruner}


def build_sampler(definition: SweepDefinition) -> BaseSampler:
    return _build("sampler", definition)


def build_pruner(definition: SweepDefinition) -> BasePruner:
    pruner = _build("pruner", definition)
    if definition.multi_objective and not isinstance(pruner, NopPruner):
        raise SweepConfigError(
            f"{definition.path}: pruner: Optuna cannot prune multi-objective trials; "
            f"use {{_target_: optuna.pruners.NopPruner}}"
        )
    return pruner


def _build(kind: str, definition: SweepDefinition):
    """``{_target_: <class>, **arguments}`` built by Hydra, as every component of a run is.

    The grid sampler is the one that needs the space up front (it enumerates every point before
    the first trial): it gets the grid of the sweep's ``space``.
    """
    spec = dict(getattr(definition, kind))
    target, where, base = spec["_target_"], f"{definition.path}: {kind}", BASES[kind]
    try:
        cls = get_class(target)
    except Exception as err:  # ImportError, or a name that is not a class
        raise SweepConfigError(
            f"{where}._target_={target!r}: cannot import it ({' '.join(str(err).split())[:200]}); "
            f"name an Optuna {kind} class, e.g. {EXAMPLES[kind]}"
        ) from None
    if not issubclass(cls, base):
        raise SweepConfigError(
            f"{where}._target_={target!r} is not an Optuna {kind} (a subclass of "
            f"{base.__module__}.{base.__name__}); e.g. {EXAMPLES[kind]}"
        )
    grid = {}
    if issubclass(cls, GridSampler):
        if "search_space" in spec:
            raise SweepConfigError(f"{where}.search_space: the grid comes from the sweep's space:; drop it")
        try:
            grid = {"search_space": definition.space.grid()}
        except SweepConfigError as err:  # the space does not suit a grid
            raise SweepConfigError(f"{definition.path}: {err}") from None
    try:
        # _partial_: Hydra builds nested components (a base_sampler, ...), the grid goes in as is.
        return instantiate(spec, _partial_=True, _convert_="all")(**grid)
    except (InstantiationException, TypeError, ValueError) as err:  # an argument the class does not take
        cause = err.__cause__ if isinstance(err, InstantiationException) and err.__cause__ else err
        raise SweepConfigError(f"{where}: {' '.join(str(cause).split())[:300]}") from None


def resolve_n_trials(definition: SweepDefinition, override: int | None, sampler: BaseSampler) -> int:
    """The number of finished trials the study should hold (complete, pruned or failed)."""
    n_trials = override if override is not None else definition.n_trials
    is_grid = isinstance(sampler, GridSampler)
    if n_trials is None:
        if not is_grid:
            raise SweepConfigError(
                f"{definition.path}: n_trials: required unless the sampler is a GridSampler"
            )
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
    storage: BaseStorage,
    definition: SweepDefinition,
    study_name: str,
    identity: dict[str, Any],
    sampler: BaseSampler,
    pruner: BasePruner,
) -> optuna.Study:
    """Create the study, or resume it when it exists and was made by the same sweep.

    The first driver stores the sweep's identity (space, objectives, what trials train, the
    overrides after ``--``) in the study; a later run with a different one would mix
    incomparable trials, so it is refused before anything is written. The objectives' names
    go in as the study's metric names, which optuna-dashboard shows.
    """
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        directions=[o.direction for o in definition.objectives],
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )
    wanted = [o.direction for o in definition.objectives]
    found = [d.name.lower() for d in study.directions]
    if found != wanted:
        raise SweepConfigError(
            f"study {study_name!r} exists with directions {found}, but {definition.path} asks for "
            f"{wanted}; use another study=<name>"
        )
    identity = json.loads(json.dumps(identity))  # as the storage returns it
    stored = study.user_attrs.get("sweep")
    if stored is None:
        study.set_user_attr("sweep", identity)
    else:
        _check_same_sweep(study_name, definition, stored, identity)
    metric_names = [o.metric for o in definition.objectives]
    if study.metric_names != metric_names:
        with warnings.catch_warnings():  # set_metric_names is an "experimental" API
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(metric_names)
    return study


def _check_same_sweep(study_name: str, definition: SweepDefinition, stored: dict, identity: dict) -> None:
    # A study recorded before a part of the identity was (e.g. the overrides after --) is not
    # checked on that part: nothing says what it was started with.
    changed = sorted(key for key in stored if identity.get(key) != stored[key])
    if not changed:
        return
    new_study = "start another study: study=<new name> (or another sweeps_root= or storage=)"
    if changed == ["overrides"]:
        before, now = (" ".join(given) or "nothing" for given in (stored["overrides"], identity["overrides"]))
        raise SweepConfigError(
            f"study {study_name!r} was started with `-- {before}`, this command gives `-- {now}`: "
            f"its trials would mix with the study's (e.g. two models on one Pareto front). Give the "
            f"study's arguments after -- to resume it, or {new_study}"
        )
    raise SweepConfigError(
        f"study {study_name!r} was started with a different {', '.join(changed)} than {definition.path} "
        f"(preset and arguments after --) gives now; resuming would mix incomparable trials. Restore "
        f"the sweep file and arguments, or {new_study}"
    )
