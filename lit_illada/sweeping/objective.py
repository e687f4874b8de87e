"""The Optuna objective: a trial's params become overrides of a subprocess, whose metrics
become the trial's values.

While the subprocess runs, new rows of its metrics.csv are reported as intermediate values
and the pruner is asked after each; a pruned trial is killed at once rather than left to
finish. Anything that ends a trial without usable metrics raises TrialFailed, which the
worker lets Optuna record as FAILED (with the stderr tail in the user attrs) before it goes
on with the next trial.

Each stage of a trial runs as a subprocess in its own process group, so that a trial that is
killed takes whatever it started with it; with ``devices_per_worker`` it sees only its
worker's GPUs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import optuna

from lit_illada.config.wandb_settings import WANDB_GROUP_ENV  # the trial's W&B runs join the study's group
from lit_illada.sweeping.commands import Command, Stage
from lit_illada.sweeping.definition import SweepDefinition
from lit_illada.sweeping.errors import SweepInterrupted, TrialFailed


@dataclass(frozen=True)
class TrialSettings:
    """How trials run; the same for every trial of this driver."""

    sweep_dir: Path
    base_overrides: list[str]  # fixed + preset + those after `--`, before the trial's params
    launcher: list[str]
    poll_interval: float
    timeout: float | None
    devices_per_worker: int | None

    @property
    def runs_root(self) -> Path:
        return self.sweep_dir / "runs"

    @property
    def logs_dir(self) -> Path:
        return self.sweep_dir / "logs"


class TrialObjective:
    def __init__(
        self,
        definition: SweepDefinition,
        command: Command,
        settings: TrialSettings,
        stop: threading.Event,
    ) -> None:
        self.definition = definition
        self.command = command
        self.settings = settings
        self.stop = stop

    def __call__(
        self, trial: optuna.Trial, worker_index: int, on_start: Callable[[], None]
    ) -> float | list[float]:
        on_start()  # the trial exists now: other workers may count it and create theirs
        run_name = f"{trial.study.study_name}-t{trial.number}"  # study= may rename the sweep's study
        run_dir = self.command.run_dir(self.settings.runs_root, run_name)
        overrides = [
            *self.settings.base_overrides,
            *self.definition.space.overrides(self.definition.space.suggest(trial)),
        ]
        for key, value in (("run_dir", str(run_dir)), ("host", socket.gethostname())):
            trial.set_user_attr(key, value)
        reporter = _Reporter(trial, self.command, run_dir, self.definition.intermediate)
        started = time.monotonic()  # trial_timeout covers all of the trial's stages
        stages = self.command.stages(self.settings.launcher, run_name, self.settings.runs_root, overrides)
        for index, stage in enumerate(stages):
            log_stem = self.settings.logs_dir / (run_name if index == 0 else f"{run_name}-{stage.label}")
            self._run_stage(trial, stage, log_stem, reporter, started, worker_index, first=index == 0)
            if stage.prune_after and trial.should_prune():  # its value was reported as it exited
                self._prune(trial, reporter)
        try:
            values = self.command.results(run_dir, self.definition.objectives)
        except TrialFailed as err:
            trial.set_user_attr("error", str(err))
            raise
        return values[0] if len(values) == 1 else values

    def _run_stage(
        self,
        trial: optuna.Trial,
        stage: Stage,
        log_stem: Path,
        reporter: _Reporter,
        started: float,
        worker_index: int,
        first: bool,
    ) -> None:
        """One subprocess of the trial, watched to its end; a failed stage fails the trial."""
        env = trial_env(worker_index, self.settings.devices_per_worker)
        env.setdefault(WANDB_GROUP_ENV, trial.study.study_name)  # the trial's W&B runs join the study's group
        process = TrialProcess(stage.argv, log_stem, env)
        # The first stage's argv and pid under plain names: what a user (or a test) looks for first.
        trial.set_user_attr("argv" if first else f"argv:{stage.label}", stage.argv)
        process.start()
        trial.set_user_attr("pid", process.pid)
        trial.set_user_attr("stage", stage.label)
        try:
            self._watch(trial, process, reporter, started)
        finally:
            process.kill()  # a no-op after a normal exit; otherwise nothing outlives the trial
        returncode = process.poll()
        trial.set_user_attr("returncode", returncode)
        if returncode != 0:
            self._fail(trial, process, f"{stage.label} exited with code {returncode}")

    def _watch(self, trial: optuna.Trial, process: TrialProcess, reporter: _Reporter, started: float) -> None:
        """Wait for the process, reporting intermediate values; kill it when pruned, timed out or stopped."""
        while process.poll() is None:
            if self.stop.wait(self.settings.poll_interval):
                trial.set_user_attr("error", "interrupted (the sweep was stopped)")
                raise SweepInterrupted("the sweep was stopped")
            if reporter.report_new():
                self._prune(trial, reporter)
            if self.settings.timeout is not None and time.monotonic() - started > self.settings.timeout:
                self._fail(trial, process, f"timed out after {self.settings.timeout:g} s (trial_timeout)")
        reporter.report_new(ask_pruner=False)  # rows written between the last poll and the exit

    @staticmethod
    def _prune(trial: optuna.Trial, reporter: _Reporter) -> NoReturn:
        trial.set_user_attr("pruned_at_step", reporter.last_step)
        raise optuna.TrialPruned(f"pruned at step {reporter.last_step}")

    @staticmethod
    def _fail(trial: optuna.Trial, process: TrialProcess, reason: str) -> NoReturn:
        tail = process.stderr_tail()
        last_line = tail.splitlines()[-1] if tail else ""  # train prints "error: <key>=<value>: ..." last
        message = f"{reason}: {last_line}" if last_line else reason
        trial.set_user_attr("error", message)
        trial.set_user_attr("stderr_tail", tail)
        raise TrialFailed(message)


class _Reporter:
    """Reports each new (step, value) of the intermediate metric once, in step order."""

    def __init__(self, trial: optuna.Trial, command: Command, run_dir: Path, metric: str | None) -> None:
        self.trial, self.command, self.run_dir, self.metric = trial, command, run_dir, metric
        self.last_step: int | None = None

    def report_new(self, ask_pruner: bool = True) -> bool:
        """Report the values written since the last call; True as soon as the pruner says stop.

        The pruner is asked after every value, not once per batch of values: several
        validations may land between two polls, and a pruner compares at the last reported
        step, where the earlier trials may have no value at all.
        """
        if self.metric is None:
            return False
        new = [
            (step, value)
            for step, value in self.command.intermediate_values(self.run_dir, self.metric)
            if self.last_step is None or step > self.last_step
        ]
        for step, value in new:
            self.trial.report(value, step)
            self.last_step = step
            if ask_pruner and self.trial.should_prune():
                return True
        return False


# -- the trial's subprocess ------------------------------------------------------------------------


class TrialProcess:
    """The trial runs in its own session (process group), so that a pruned or timed-out trial
    is killed together with whatever it started: DataLoader workers, DDP ranks.

    stdout and stderr go to files rather than pipes: the driver polls metrics while the trial
    runs and never reads the pipes, so a chatty trial would block on a full pipe buffer.
    """

    def __init__(self, argv: list[str], log_stem: Path, env: dict[str, str]) -> None:
        self.argv = argv
        self.stdout_path = log_stem.with_name(log_stem.name + ".out")
        self.stderr_path = log_stem.with_name(log_stem.name + ".err")
        self.env = env
        self._popen: subprocess.Popen | None = None

    def start(self) -> TrialProcess:
        self.stdout_path.parent.mkdir(parents=True, exist_ok=True)
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            # The child holds its own copies of the file descriptors; ours can close now.
            self._popen = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self._popen is not None, "start() first"
        return self._popen.pid

    def poll(self) -> int | None:
        """The exit code, or None while it runs."""
        assert self._popen is not None, "start() first"
        return self._popen.poll()

    def kill(self) -> None:
        """SIGKILL the whole group; a no-op once everything has exited.

        The driver discards the result of a trial it kills (pruned, timed out, interrupted), so
        there is nothing to save. SIGTERM would make Lightning stop "gracefully": validate,
        checkpoint and write a summary first, all time the sweep would wait for.
        """
        if self._popen is None:
            return
        try:
            os.killpg(self._popen.pid, signal.SIGKILL)  # start_new_session: group id = child's pid
        except (ProcessLookupError, PermissionError):  # the group is gone already
            pass
        self._popen.wait()

    def stderr_tail(self, max_lines: int = 30, max_chars: int = 4000) -> str:
        """The end of stderr, where the error is (Hydra and train print it last)."""
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip().splitlines()[-max_lines:])[-max_chars:]


def trial_env(worker_index: int, devices_per_worker: int | None) -> dict[str, str]:
    """The environment of a trial started by worker ``worker_index``.

    With ``devices_per_worker=k`` worker i sees CUDA devices [i*k, (i+1)*k) of those visible
    to the driver, so N workers on one node never train on the same GPU.
    """
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")  # the log files show progress as it happens
    if devices_per_worker is None:
        return env
    visible = env.get("CUDA_VISIBLE_DEVICES")
    devices = (
        visible.split(",") if visible else [str(i) for i in range((worker_index + 1) * devices_per_worker)]
    )
    mine = devices[worker_index * devices_per_worker : (worker_index + 1) * devices_per_worker]
    if len(mine) < devices_per_worker:
        raise ValueError(
            f"worker {worker_index} needs devices_per_worker={devices_per_worker} GPUs but "
            f"CUDA_VISIBLE_DEVICES={visible} has {len(devices)}; lower workers or devices_per_worker"
        )
    env["CUDA_VISIBLE_DEVICES"] = ",".join(mine)
    return env
