"""Hand out a study's remaining trials exactly once, across threads and processes.

``n_trials`` counts the trials the study holds that are finished (COMPLETE, PRUNED, FAIL) or
under way (RUNNING, or WAITING in Optuna's queue). A stale trial that Optuna re-queued
(``retry_failed``) is replaced by its retry and not counted twice. A killed sweep restarted
with the same command therefore runs only the trials that are missing.
"""

from __future__ import annotations

import fcntl
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING, TrialState.WAITING)


@dataclass(frozen=True)
class Budget:
    n_trials: int
    used: int  # counted trials, see the module docstring
    running: int
    waiting: int

    @property
    def can_start(self) -> bool:
        # A WAITING trial (a retry, or one enqueued by hand) is part of the budget already.
        return self.waiting > 0 or self.used < self.n_trials


def count(study: optuna.Study, n_trials: int) -> Budget:
    trials = study.get_trials(deepcopy=False)
    with warnings.catch_warnings():  # retry_history is marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retried = {n for t in trials for n in RetryHeartbeatStaleTrialCallback.retry_history(t)}
    states = [t.state for t in trials if t.number not in retried]
    return Budget(
        n_trials=n_trials,
        used=sum(state in COUNTED for state in states),
        running=states.count(TrialState.RUNNING),
        waiting=states.count(TrialState.WAITING),
    )


class AskLock:
    """Makes "count the trials, then create one" atomic, so that workers never overshoot n_trials.

    Threads of this driver share a lock; drivers in other processes on the same sweep folder
    (``workers`` started by hand, a SLURM array) share an flock on a file in it. The trial is
    created inside ``study.optimize``, so the holder passes ``release`` on to the objective,
    which calls it as soon as the trial exists: the lock is never held while a trial trains.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._threads = threading.Lock()

    @contextmanager
    def hold(self):
        holding = _Holding(self)
        try:
            yield holding
        finally:
            holding.release()


class _Holding:
    """One acquisition; release() is idempotent, so the objective and the context both may call it."""

    def __init__(self, lock: AskLock) -> None:
        lock._threads.acquire()
        self._lock = lock
        try:
            self._file = lock.path.open("a")
            fcntl.flock(self._file, fcntl.LOCK_EX)
        except BaseException:
            lock._threads.release()
            raise
        self._held = True

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()
        self._lock._threads.release()
