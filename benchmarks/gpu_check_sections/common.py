"""What every section of the GPU check shares: its settings, the section record and its time
limit, timing, device memory and the subprocess that runs a real command."""

from __future__ import annotations

import gc
import math
import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lit_illada.core.model import ModelConfig

ROOT = Path(__file__).resolve().parents[2]  # the repository: real commands run from here

MASK_ID = 5  # iLLaDA's mask id; any id serves a throughput measurement
# The tiny GQA model every section uses under --smoke.
SMOKE_MODEL = ModelConfig(
    name="smoke", vocab_size=264, n_layers=2, d_model=64, n_heads=4, n_kv_heads=2, ffn_hidden=128, max_seq_len=128
)


@dataclass(frozen=True)
class Settings:
    """One run of the check: where it runs, at which scale, and against which peak."""

    smoke: bool  # tiny shapes on CPU: every code path, no meaningful number
    device: torch.device
    peak_flops: float | None  # dense bf16 FLOP/s of one device; None: no MFU
    workdir: Path  # run folders of the real commands (temporary)
    gpus: int  # CUDA devices visible

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def dtype(self) -> torch.dtype:
        """Weights of the inference sections: bf16 on GPU, float32 on a CPU (exact comparisons)."""
        return torch.bfloat16 if self.cuda else torch.float32


class SectionTimeout(Exception):
    """Raised in the main thread when a section passes its hard time limit."""


@dataclass
class Section:
    """A section's record: what it measured (``result``, filled as it goes, so a failure keeps
    the numbers already taken), a short summary for the table and its targets, met or missed."""

    key: str
    title: str
    budget_s: float
    result: dict = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def left(self) -> float:
        """Seconds left of this section's budget."""
        return self.budget_s - (time.perf_counter() - self.started)

    def show(self, label: str, value) -> None:
        """A line of the printed table (also kept in the JSON under ``summary``)."""
        self.result.setdefault("summary", {})[label] = value

    def target(self, name: str, value: float | None, goal: str, met: bool | None) -> None:
        """``met`` None: not measured here (say why in ``value``'s place with ``show``)."""
        value = None if value is None or not math.isfinite(value) else round(value, 4)
        self.result.setdefault("targets", []).append({"name": name, "value": value, "goal": goal, "met": met})


def run_section(section: Section, body: Callable[[Settings, Section], None], settings: Settings) -> None:
    """Run one section under its time limit; any failure is recorded (the traceback's last line
    in ``error``, its tail in ``traceback``) and the check goes on with the next section."""
    section.started = time.perf_counter()
    try:
        with time_limit(section.budget_s):
            body(settings, section)
        section.result["status"] = "ok"
    except (Exception, SystemExit):  # noqa: BLE001 - one broken section must not hide the others' numbers
        text = traceback.format_exc()
        section.result["status"] = "error"
        section.result["error"] = text.strip().splitlines()[-1]
        section.result["traceback"] = text[-4000:]
    finally:
        section.result["seconds"] = round(time.perf_counter() - section.started, 1)
        free_memory()


@contextmanager
def time_limit(seconds: float):
    """Raise ``SectionTimeout`` in the main thread after ``seconds`` (SIGALRM; a child process
    started with ``run_command`` is killed on the way out)."""
    if seconds <= 0:
        raise SectionTimeout("no time left for this section")

    def fire(signum, frame):
        raise SectionTimeout(f"stopped at its time limit of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls after ``warmup`` calls (synchronized)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync(device)
        started = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


@contextmanager
def default_dtype(dtype: torch.dtype):
    """Build modules directly in ``dtype`` (an 8B model in bf16 never exists in float32)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def ratio(a: float | None, b: float | None) -> float | None:
    return None if not a or not b else a / b


def train_command(settings: Settings, name: str, *overrides: str) -> list[str]:
    """``python -m lit_illada.train`` with a CSV log in this check's work folder."""
    return [
        sys.executable,
        "-m",
        "lit_illada.train",
        f"runs_root={settings.workdir / 'runs'}",
        f"name={name}",
        "logger=csv",
        "num_samples=0",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        *overrides,
    ]


def start_command(args: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    """Start a real command from the repository root, its output going to ``log`` (a file, not a
    pipe: commands run side by side never block on output nobody reads yet). Its own process
    group, so that a kill reaches Lightning's other ranks too."""
    with log.open("w") as output:
        return subprocess.Popen(
            args,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )


def finish_command(proc: subprocess.Popen, log: Path, timeout: float) -> None:
    """Wait for ``proc``; a RuntimeError with the tail of its ``log`` when it failed. Killed (with
    its process group) on a timeout or when the section is stopped."""
    try:
        proc.wait(timeout=max(timeout, 1))
    except BaseException:
        kill_group(proc)
        raise
    if proc.returncode != 0:
        name = next((a for a in proc.args if a.startswith("name=")), "")
        raise RuntimeError(
            f"{' '.join(proc.args[1:3])} {name} exited {proc.returncode}: {tail(log.read_text())}"
        )


def finish_all(started: list[tuple[subprocess.Popen, Path]], left: Callable[[], float]) -> None:
    """``finish_command`` for each of the commands ``started`` side by side (with their logs);
    the others are killed when one fails. ``left``: the seconds left, asked before each wait."""
    try:
        for proc, log in started:
            finish_command(proc, log, left())
    finally:
        for proc, _ in started:
            if proc.poll() is None:
                kill_group(proc)


def run_command(args: list[str], log: Path, timeout: float) -> None:
    finish_command(start_command(args, log), log, timeout)


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def tail(text: str, lines: int = 8) -> str:
    return " | ".join(line for line in text.strip().splitlines()[-lines:] if line.strip())


def free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
