"""Worker threads share out a study's trials: each runs trials until the budget is spent, then
waits for stragglers.

The budget: ``n_trials`` counts the trials the study holds that are finished (COMPLETE, PRUNED,
FAIL) or under way (RUNNING, or WAITING in Optuna's queue). A stale trial that Optuna re-queued
(``retry_failed``) is replaced by its retry and not counted twice. A killed sweep restarted
with the same command therefore runs only the trials that are missing. Counting the trials and
creating the next one is atomic (AskLock), across threads and processes, so every remaining
trial is handed out exactly once.

Threads are enough: every trial is a subprocess, so a worker only waits and polls. When the
budget is spent a worker is done, unless trials are still RUNNING:

- with a heartbeat (database storage) it waits until they finish or go stale; a stale one
  (its driver was killed) is then marked FAILED or re-queued, so no trial stays RUNNING;
- without one (journal storage) a RUNNING trial of another process may never resolve, so
  only this driver's own threads are waited for.
"""

from __future__ import annotations

import fcntl
import functools
import threading
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from lit_illada.sweeping.errors import SweepInterrupted, TrialFailed
from lit_illada.sweeping.objective import TrialObjective

# -- the trial budget ------------------------------------------------------------------------------

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


# -- the worker threads ----------------------------------------------------------------------------


class Workers:
    def __init__(
        self,
        study: optuna.Study,
        objective: TrialObjective,
        n_trials: int,
        lock: AskLock,
        heartbeat: bool,
        on_trial_done: Callable[[optuna.Study, FrozenTrial], None],
    ) -> None:
        self.study = study
        self.objective = objective
        self.n_trials = n_trials
        self.lock = lock
        self.heartbeat = heartbeat
        self.on_trial_done = on_trial_done
        self.stop = objective.stop  # set on Ctrl-C / SIGTERM: running trials are killed
        self.poll_interval = objective.settings.poll_interval
        self._errors: list[BaseException] = []

    def run(self, n_workers: int) -> None:
        done = [threading.Event() for _ in range(n_workers)]
        for index in range(n_workers):
            name = f"sweep-worker-{index}"
            threading.Thread(target=self._guarded, args=(index, done[index]), name=name, daemon=True).start()
        # Events, not Thread.join: a join interrupted by Ctrl-C may later return while the
        # thread still runs (CPython), and the trials must be marked FAILED before reporting.
        try:
            for event in done:
                while not event.wait(timeout=0.2):  # a bounded wait keeps Ctrl-C responsive
                    pass
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM (see lit_illada.sweep): stop, kill trials
            self.stop.set()
            for event in done:
                event.wait()
            raise
        if self._errors:
            raise self._errors[0]

    def _guarded(self, index: int, done: threading.Event) -> None:
        try:
            self._work(index)
        except SweepInterrupted:
            pass  # Optuna has recorded the trial as FAILED; the main thread reports the interruption
        except BaseException as err:  # noqa: BLE001 - handed to the main thread, which raises it
            self._errors.append(err)
            self.stop.set()
        finally:
            done.set()

    def _work(self, index: int) -> None:
        while not self.stop.is_set():
            with self.lock.hold() as holding:
                budget = count(self.study, self.n_trials)
                if budget.can_start:
                    objective = functools.partial(
                        self.objective, worker_index=index, on_start=holding.release
                    )
                    self.study.optimize(
                        objective, n_trials=1, catch=(TrialFailed,), callbacks=[self.on_trial_done]
                    )
                    continue
            if budget.running == 0 or not self.heartbeat:
                return
            self._fail_stale_trials()
            self.stop.wait(self.poll_interval)

    def _fail_stale_trials(self) -> None:
        # study.optimize does this before every trial; a waiting worker has to ask itself.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(self.study)
