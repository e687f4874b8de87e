"""One training process per run folder: an OS lock (``flock``) on ``runs/<name>/.lock``.

Rank 0 holds it for the run's life; a second process on the same folder is refused at once,
with the holder's PID and host. The kernel drops the lock when its holder dies, ``kill -9``
included, so a stale file never blocks a resume. The file stays in the folder: deleting a
lock file while others may open it lets two processes lock two different files.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import sys
import time
from datetime import datetime
from pathlib import Path

import yaml

from lit_illada.config.errors import ConfigError
from lit_illada.config.paths import CONF_DIR

LOCK_FILE = ".lock"
# Set (non-zero) in the ranks a launcher starts besides rank 0 (config.parallel.is_launch_rank_zero,
# which imports torch: this module must not).
RANK_VARIABLES = ("RANK", "SLURM_PROCID", "NODE_RANK", "LOCAL_RANK")
# A probe holds a shared lock for a moment, and the data-loader workers of a holder killed
# alone (not its process group) keep the lock until they notice, within about 5 s.
RETRY_SECONDS = 0.2
ORPHAN_WAIT_SECONDS = 15.0


class RunInUseError(ConfigError):
    """Another process holds the run folder: refused like a bad input (one line, exit 2)."""


class RunLock:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.path = self.root / LOCK_FILE
        self._fd: int | None = None

    def refuse_if_held(self) -> None:
        """Refuse now if a live process holds the lock; changes nothing on disk (a momentary
        shared lock on an existing file), so a run can be refused before its slow start-up."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return  # no lock file (a new run) or unreadable: acquire() decides
        try:
            if not _try_lock(fd, fcntl.LOCK_SH) and self._holder_alive():
                raise self._in_use()
        except OSError:
            pass  # no locks on this filesystem: acquire() warns
        finally:
            os.close(fd)  # also drops the shared lock

    def acquire(self) -> None:
        """Take the lock (the folder exists) and record this process as its holder."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + RETRY_SECONDS
        try:
            while not _try_lock(fd, fcntl.LOCK_EX):
                if not self._holder_alive():  # orphaned workers of a killed holder: they exit soon
                    deadline = max(deadline, time.monotonic() + ORPHAN_WAIT_SECONDS)
                if time.monotonic() > deadline:
                    raise self._in_use()
                time.sleep(0.02)
        except OSError as err:
            os.close(fd)
            if err.errno in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                print(f"warning: cannot lock {self.path} ({err.strerror}): a second process on "
                      f"this run would not be refused")
                return
            raise
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        holder = f"{os.getpid()} {socket.gethostname()} {datetime.now():%Y-%m-%d %H:%M:%S}\n"
        os.pwrite(fd, holder.encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def holder(self) -> tuple[int | None, str, str]:
        """(PID, host, since) as the holder wrote them; (None, "", "") when unknown."""
        try:
            pid, host, *since = self.path.read_text().split()
            return int(pid), host, " ".join(since)
        except (OSError, ValueError):
            return None, "", ""

    def _holder_alive(self) -> bool:
        """False only when the recorded holder is a process of this host that has exited."""
        pid, host, _ = self.holder()
        if pid is None or host != socket.gethostname():
            return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True

    def _in_use(self) -> RunInUseError:
        pid, host, since = self.holder()
        who = f"PID {pid} on host {host}, since {since}" if pid is not None else "its PID not written yet"
        return RunInUseError(
            f"{self.root} is in use by another training run ({who}); wait for it to finish or stop it, "
            f"or pass another name= to start a new run"
        )


def _try_lock(fd: int, kind: int) -> bool:
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def refuse_busy_run_early(argv: list[str]) -> None:
    """The first thing ``python -m lit_illada.train`` does, before torch and Lightning load
    (seconds): a run folder that another process holds, named by ``name=`` on the command line,
    is refused at once (one line, exit 2). The same check runs again on the composed config;
    this one only makes the refusal immediate, and skips what it cannot read plainly."""
    if "-m" in argv or "--multirun" in argv or any(os.environ.get(k, "0") != "0" for k in RANK_VARIABLES):
        return
    name, runs_root = _plain_value(argv, "name"), _plain_value(argv, "runs_root")
    if not name or runs_root == "":
        return
    if runs_root is None:
        runs_root = yaml.safe_load((CONF_DIR / "train.yaml").read_text()).get("runs_root", "runs")
    try:
        RunLock(Path(str(runs_root)) / name).refuse_if_held()
    except RunInUseError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def _plain_value(argv: list[str], key: str) -> str | None:
    """The last ``key=value`` (or ``+key=``, ``++key=``) of a command line; None when absent,
    "" when Hydra would read more into it (a list, an interpolation, quotes)."""
    value = None
    for arg in argv:
        found, sep, text = arg.lstrip("+").partition("=")
        if sep and found == key:
            value = text
    if value is not None and any(c in value for c in ",${}[]()'\"\\"):
        return ""
    return value
