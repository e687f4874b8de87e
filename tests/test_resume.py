"""Kill a real training run at a random moment, run the same command again: it continues exactly.

Every run here is ``python -m lit_illada.train`` in a subprocess, killed with SIGKILL (its whole
process group: Lightning's second rank too). On CPU with float32, one thread and a fixed seed,
the resumed run must log the very same numbers, bit for bit, as a run that was never killed.

metrics.csv is appended across resumes, so steps logged between the last checkpoint and the
kill appear twice; the comparison keeps the last row per step (the resumed run's).
"""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from torch.serialization import get_unsafe_globals_in_checkpoint

from lit_illada.checkpoints.files import (
    KILL_DURING_SAVE_ENV,
    checkpoint_step,
    step_checkpoints,
    verify_checkpoint,
)
from lit_illada.config.checks import ConfigError
from tests.runs import FAST
from tests.runs import train as train_here

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SEED = int(os.environ.get("LIT_ILLADA_KILL_SEED", "10"))  # picks the moment killed (printed)
EXACT = [
    "threads=1",
    "num_samples=0",
    "trainer.log_every_n_steps=1",
    "checkpoint.every_n_steps=3",  # mid-epoch resume points between the validations
    "+trainer.limit_train_batches=7",  # epochs of 7 steps: resumes fall mid-epoch and at epoch ends
]
SINGLE = [*EXACT, "trainer.max_time=null", "trainer.max_steps=30", "trainer.val_check_interval=10"]
FSDP = [
    *EXACT, "trainer=fsdp", "trainer.accelerator=cpu", "parallel.param_dtype=float32", "trainer.devices=2",
    "data.batch_size=4", "data.val_batches=4", "trainer.max_steps=16", "trainer.val_check_interval=8",
]


def command(root: Path, cache_dir: Path, name: str, *overrides: str) -> list[str]:
    cache_key = "data.source.cache_dir" if "stage=sft" in overrides else "data.cache_dir"
    return [sys.executable, "-m", "lit_illada.train", *FAST, f"runs_root={root}", f"{cache_key}={cache_dir}",
            f"name={name}", *overrides]


def train(args: list[str], env: dict | None = None, expect: int = 0) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == expect, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def kill_at_random(args: list[str], checkpoints: Path, rng: random.Random, last_step: int) -> str:
    """Start ``args`` and SIGKILL it (all its processes) at a random moment after its step
    checkpoint ``after`` appeared; returns that moment, also printed."""
    after, delay = rng.randrange(3, last_step - 8, 3), rng.uniform(0.0, 0.3)
    log = checkpoints.parent.with_suffix(".log")
    with log.open("w") as output:
        proc = subprocess.Popen(args, cwd=ROOT, stdout=output, stderr=output, start_new_session=True)
    while not any(checkpoint_step(p) >= after for p in step_checkpoints(checkpoints)):
        assert proc.poll() is None, f"the run ended before step {after}: {log.read_text()[-3000:]}"
        time.sleep(0.005)
    time.sleep(delay)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    newest = os.readlink(checkpoints / "last.ckpt")
    moment = f"SIGKILL {delay:.3f} s after step-{after}.ckpt appeared; newest checkpoint then: {newest}"
    print(moment)
    return moment


def logged(run_dir: Path, column: str) -> pd.Series:
    """``column`` per step; a resumed run drops the rows of the steps it replays, so each step
    appears once, as in an uninterrupted run."""
    rows = pd.read_csv(run_dir / "metrics.csv").dropna(subset=[column])
    assert rows["step"].is_unique, f"{run_dir}: {column} logged twice at steps {rows['step'][rows['step'].duplicated()].tolist()}"
    return rows.set_index("step")[column]


def assert_same_numbers(resumed: Path, uninterrupted: Path, context: str) -> None:
    for column in ("train/loss", "lr", "val/nll"):
        got, want = logged(resumed, column), logged(uninterrupted, column)
        assert list(got.index) == list(want.index), f"{context}: {column} logged at other steps"
        differ = got[got.to_numpy() != want.to_numpy()]
        assert differ.empty, f"{context}: {column} differs from the uninterrupted run at {list(differ.index)}"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, cache_dir):
    root = tmp_path_factory.mktemp("uninterrupted")
    train(command(root, cache_dir, "single", *SINGLE))
    return root


def test_killed_run_resumes_bit_for_bit(uninterrupted, tmp_path, cache_dir):
    args = command(tmp_path, cache_dir, "run", *SINGLE)
    moment = kill_at_random(args, tmp_path / "run" / "checkpoints", random.Random(SEED), last_step=30)
    started = time.perf_counter()
    proc = train(args)  # the same command
    print(f"resumed run: {time.perf_counter() - started:.1f} s")
    assert "resuming from step-" in proc.stdout
    assert_same_numbers(tmp_path / "run", uninterrupted / "single", moment)


def test_kill_during_a_save_resumes_from_the_previous_checkpoint(uninterrupted, tmp_path, cache_dir):
    # With loader worker processes, which the uninterrupted run did not use: no number changes.
    args = command(tmp_path, cache_dir, "run", *SINGLE, "data.num_workers=2")
    checkpoints = tmp_path / "run" / "checkpoints"
    # Step 12 is a step checkpoint (every 3) with no validation: the hook SIGKILLs the process
    # halfway through writing it, so the temporary file is left half-written.
    train(args, env={**os.environ, KILL_DURING_SAVE_ENV: "12"}, expect=-signal.SIGKILL)
    half = checkpoints / ".step-12.ckpt.tmp"
    assert half.exists() and not (checkpoints / "step-12.ckpt").exists()
    assert os.readlink(checkpoints / "last.ckpt") == "step-10.ckpt"  # the save before it
    proc = train(args)
    assert "resuming from step-10.ckpt" in proc.stdout
    assert not half.exists()  # cleaned up
    assert_same_numbers(tmp_path / "run", uninterrupted / "single", "killed while saving step 12")


def test_sigterm_and_sigusr1_save_and_exit_for_a_requeue(uninterrupted, tmp_path, cache_dir):
    for sig in (signal.SIGTERM, signal.SIGUSR1):
        name = sig.name.lower()
        args = command(tmp_path, cache_dir, name, *SINGLE)
        log = tmp_path / f"{name}.err"
        with log.open("w") as errors:
            proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=errors, text=True)
        while not step_checkpoints(tmp_path / name / "checkpoints"):
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.005)
        proc.send_signal(sig)
        out = proc.communicate(timeout=600)[0]
        assert proc.returncode == 75, log.read_text()[-3000:]  # EXIT_PREEMPTED
        assert "stopped by a signal at step" in out
        stopped = int(out.split("stopped by a signal at step ")[1].split(";")[0])
        assert os.readlink(tmp_path / name / "checkpoints" / "last.ckpt") == f"step-{stopped}.ckpt"
        assert f"resuming from step-{stopped}.ckpt" in train(args).stdout
        assert_same_numbers(tmp_path / name, uninterrupted / "single", f"{sig.name} at step {stopped}")


def test_sft_run_killed_while_saving_resumes_bit_for_bit(tmp_path, cache_dir):
    sft = ["stage=sft", "data.seq_len=256", "data.batch_size=4", "data.val_batches=1", *EXACT,
           "trainer.max_time=null", "trainer.max_steps=10", "trainer.val_check_interval=5"]
    train(command(tmp_path, cache_dir, "whole", *sft))
    args = command(tmp_path, cache_dir, "run", *sft)
    train(args, env={**os.environ, KILL_DURING_SAVE_ENV: "6"}, expect=-signal.SIGKILL)
    assert "resuming from step-5.ckpt" in train(args).stdout
    assert_same_numbers(tmp_path / "run", tmp_path / "whole", "SFT killed while saving step 6")


def test_fsdp_run_killed_on_two_ranks_resumes_bit_for_bit(tmp_path, cache_dir):
    train(command(tmp_path, cache_dir, "whole", *FSDP))
    args = command(tmp_path, cache_dir, "run", *FSDP)
    checkpoints = tmp_path / "run" / "checkpoints"
    moment = kill_at_random(args, checkpoints, random.Random(SEED + 1), last_step=16)
    proc = train(args)
    assert "resuming from step-" in proc.stdout
    assert_same_numbers(tmp_path / "run", tmp_path / "whole", moment)
    for folder in checkpoints.glob("*.ckpt"):  # DCP folders: complete, and loadable without pickled code
        verify_checkpoint(folder)
        assert get_unsafe_globals_in_checkpoint(folder / "meta.pt") == []


def test_time_based_checkpoints_and_checked_settings(tmp_path, cache_dir):
    train_here(tmp_path, cache_dir, "checkpoint.every_minutes=1e-6", "checkpoint.keep_last=10",
               "trainer.max_steps=5", "trainer.val_check_interval=5", "num_samples=0")
    assert [p.name for p in step_checkpoints(tmp_path / "run" / "checkpoints")] == [
        f"step-{n}.ckpt" for n in (5, 4, 3, 2, 1)
    ]  # a save at every step: each one found the interval passed
    with pytest.raises(ConfigError, match="checkpoint.keep_last=0: a positive integer"):
        train_here(tmp_path, cache_dir, "checkpoint.keep_last=0", name="bad")
    with pytest.raises(ConfigError, match="checkpoint.every_n_steps=-2"):
        train_here(tmp_path, cache_dir, "checkpoint.every_n_steps=-2", name="bad")
    assert not (tmp_path / "bad").exists()  # refused before anything was written
