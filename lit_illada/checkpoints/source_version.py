"""The git commit of the lit_illada code a run trains with, for the run record's starts.jsonl.

The checkout is the one holding this package (the code that ran), wherever the command was
started from. "dirty" follows ``git describe --dirty``: tracked files with uncommitted changes
(untracked files are not counted). Nothing is recorded when git or the checkout is absent (an
installed wheel) or git does not answer in time.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]
GIT_TIMEOUT_S = 10


def git_state(where: Path = PACKAGE_DIR) -> dict | None:
    """``{"commit": <sha>, "dirty": bool}`` of the checkout holding ``where``, else None."""
    try:
        commit = _git(where, "rev-parse", "HEAD")
        changes = _git(where, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):  # no git, no checkout, no answer in time
        return None
    return {"commit": commit, "dirty": bool(changes)}


def _git(where: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=where, capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=True
    )
    return done.stdout.strip()
