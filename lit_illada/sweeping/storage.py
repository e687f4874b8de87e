"""Open the study storage named by ``storage=``.

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

import time
import warnings
from pathlib import Path

import optuna
import sqlalchemy.exc
from optuna.storages import BaseStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend, JournalStorage

from lit_illada.sweeping.errors import SweepConfigError

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
