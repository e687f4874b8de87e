"""One trial's subprocess: start it, see whether it ended, kill it and everything it started."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path


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
