"""Worker threads: each runs trials until the budget is spent, then waits for stragglers.

Threads are enough: every trial is a subprocess, so a worker only waits and polls. When the
budget is spent a worker is done, unless trials are still RUNNING:

- with a heartbeat (database storage) it waits until they finish or go stale; a stale one
  (its driver was killed) is then marked FAILED or re-queued, so no trial stays RUNNING;
- without one (journal storage) a RUNNING trial of another process may never resolve, so
  only this driver's own threads are waited for.
"""

from __future__ import annotations

import functools
import threading
import warnings
from collections.abc import Callable

import optuna
from optuna.trial import FrozenTrial

from lit_illada.sweeping.budget import AskLock, count
from lit_illada.sweeping.errors import SweepInterrupted, TrialFailed
from lit_illada.sweeping.objective import TrialObjective


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
