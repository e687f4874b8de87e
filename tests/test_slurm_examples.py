"""Every SLURM example asks for the warning signal that makes the run save and requeue itself
before its time limit (``#SBATCH --signal=USR1@<seconds>``), and that signal is one the trainer
handles (``PreemptionSignal``), delivered to the srun tasks rather than to the batch script."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest

from lit_illada.training.callbacks import PreemptionSignal

SLURM = Path(__file__).resolve().parent.parent / "examples" / "slurm"
SBATCH_FILES = sorted(SLURM.glob("*.sbatch"))
# sbatch's --signal=[{R|B}:]<sig_num>[@sig_time]. By default every job step (the srun tasks) gets it;
# B: sends it to the batch shell alone, R: is about reservations.
SIGNAL_OPTION = re.compile(
    r"^#SBATCH\s+--signal[=\s]+(?:(?P<flags>[RB]+):)?(?P<signal>\w+)(?:@(?P<seconds>\d+))?\s*$"
)
TIME_OPTION = re.compile(r"^#SBATCH\s+(?:--time[=\s]+|-t\s*)(?P<limit>\S+)\s*$")


def sbatch_options(path: Path) -> list[str]:
    """The ``#SBATCH`` lines sbatch reads: those before the first command of the script."""
    lines = []
    for line in path.read_text().splitlines()[1:]:  # after the #! line
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            break
        if stripped.startswith("#SBATCH"):
            lines.append(stripped)
    return lines


def limit_seconds(limit: str) -> int:
    """sbatch --time: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS."""
    days, _, clock = limit.rpartition("-")
    parts = [int(part) for part in clock.split(":")]
    if days:
        hours, minutes, seconds = (parts + [0, 0])[:3]
    else:
        hours, minutes, seconds = {1: (0, parts[0], 0), 2: (0, *parts), 3: tuple(parts)}[len(parts)]
    return ((int(days or 0) * 24 + hours) * 60 + minutes) * 60 + seconds


def signal_number(name: str) -> int:
    if name.isdigit():
        return int(name)
    return getattr(signal, name if name.startswith("SIG") else f"SIG{name}")


def test_there_are_sbatch_examples():
    assert SBATCH_FILES, f"no *.sbatch in {SLURM}"


@pytest.mark.parametrize("path", SBATCH_FILES, ids=[p.name for p in SBATCH_FILES])
def test_sbatch_warns_the_run_before_its_time_limit(path, monkeypatch):
    options = sbatch_options(path)
    found = [m for m in map(SIGNAL_OPTION.match, options) if m]
    assert len(found) == 1, f"{path.name}: add one `#SBATCH --signal=USR1@<seconds>` (README, SLURM)"
    (option,) = found
    handled = {getattr(signal, name) for name in PreemptionSignal.SIGNALS if hasattr(signal, name)}
    number = signal_number(option["signal"])
    assert number in handled, f"{path.name}: {option[0]}: the trainer does not save on this signal"
    preemption = PreemptionSignal()  # what the trainer does after saving on it, inside a SLURM job
    preemption.received = number
    monkeypatch.setenv("SLURM_JOB_ID", "1")
    assert preemption.requeue, f"{path.name}: {option[0]}: the trainer saves but does not requeue the job"
    assert "B" not in (option["flags"] or ""), f"{path.name}: B: signals only the batch shell, not the ranks"
    assert option["seconds"], f"{path.name}: --signal needs a lead time (USR1@N, N in s) before the limit"
    lead = int(option["seconds"])  # the configured warning time (a setting, not a measurement)
    limits = [limit_seconds(m["limit"]) for m in map(TIME_OPTION.match, options) if m]
    assert limits, f"{path.name}: no --time, so no time limit to warn before"
    assert 120 <= lead < limits[0] / 2, f"{path.name}: {lead} s: at least 120 s, well inside --time"
    assert any(line.startswith("#SBATCH --requeue") for line in options), f"{path.name}: --requeue is needed"
