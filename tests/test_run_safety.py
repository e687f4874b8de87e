"""Run records that cannot be lost or corrupted (issue 14): one process per run folder, default
names that never collide, a finished run left as it is, the final validation competing for
best.ckpt, and Ctrl-C saving like SIGTERM.

Where processes or signals are the point, ``python -m lit_illada.train`` runs in a subprocess;
otherwise the composed ``run`` is called, as the command line does.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from lit_illada.checkpoints.files import checkpoint_step, step_checkpoints, verify_checkpoint
from lit_illada.config.checks import exit_on_bad_input
from lit_illada.config.choices import record_choices
from lit_illada.train import run
from lit_illada.training.run import EXIT_INTERRUPTED, default_run_name
from lit_illada.training.run_lock import LOCK_FILE
from tests.runs import FAST, compose_train
from tests.runs import train as train_here
from tests.test_resume import ROOT, command

pytestmark = pytest.mark.slow

QUIET = ["num_samples=0", "trainer.val_check_interval=10"]


def files_of(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (links as their target) and its content hash."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            found[str(path.relative_to(folder))] = "-> " + os.readlink(path)
        elif path.is_file():
            found[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def assert_readable_metrics(run_dir: Path) -> pd.DataFrame:
    """metrics.csv has one header and every row as wide as it (two writers would mix widths)."""
    with (run_dir / "metrics.csv").open(newline="") as handle:
        header, *rows = list(csv.reader(handle))
    assert rows and all(len(row) == len(header) for row in rows), f"{run_dir}/metrics.csv: ragged rows"
    return pd.read_csv(run_dir / "metrics.csv")


def wait_for(condition, proc: subprocess.Popen, log: Path) -> None:
    while not condition():
        assert proc.poll() is None, f"the run ended first:\n{log.read_text()[-3000:]}"
        time.sleep(0.05)


# -- 1. two processes, one run folder ------------------------------------------------------------


def test_a_second_process_on_a_busy_run_folder_is_refused_at_once(tmp_path, cache_dir, capsys):
    args = command(tmp_path, cache_dir, "shared", *QUIET, "trainer.max_steps=30")
    log = tmp_path / "first.log"
    with log.open("w") as output:
        first = subprocess.Popen(args, cwd=ROOT, stdout=output, stderr=output)
    lock = tmp_path / "shared" / LOCK_FILE
    wait_for(lambda: lock.exists() and lock.read_text().strip(), first, log)

    second = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    first_still_running = first.poll() is None
    # The same through the composed config (the check that runs after the command line's).
    overrides = [*FAST, *QUIET, f"runs_root={tmp_path}", "name=shared", f"data.cache_dir={cache_dir}"]
    in_process = record_choices(compose_train(*overrides))  # as the command does: Hydra's node dropped
    with pytest.raises(SystemExit) as refused:
        exit_on_bad_input(run, in_process)

    assert second.returncode == 2, second.stderr[-3000:]
    message = second.stderr.strip().splitlines()[-1]
    assert message.startswith("error: ") and "is in use by another training run" in message
    assert f"PID {first.pid} on host {socket.gethostname()}" in message and "another name=" in message
    assert first_still_running  # refused while the first trained, not queued behind it
    assert refused.value.code == 2
    assert "is in use by another training run" in capsys.readouterr().err

    assert first.wait(timeout=600) == 0, log.read_text()[-3000:]
    metrics = assert_readable_metrics(tmp_path / "shared")
    assert metrics.dropna(subset=["train/loss"])["step"].is_unique  # one writer
    summary = json.loads((tmp_path / "shared" / "summary.json").read_text())
    assert (summary["status"], summary["step"]) == ("finished", 30)


def test_a_lock_left_by_a_killed_run_does_not_block_its_resume(tmp_path, cache_dir):
    args = command(tmp_path, cache_dir, "killed", *QUIET, "trainer.max_steps=20",
                   "checkpoint.every_n_steps=2")
    log = tmp_path / "killed.log"
    with log.open("w") as output:
        proc = subprocess.Popen(args, cwd=ROOT, stdout=output, stderr=output, start_new_session=True)
    wait_for(lambda: step_checkpoints(tmp_path / "killed" / "checkpoints"), proc, log)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert str(proc.pid) in (tmp_path / "killed" / LOCK_FILE).read_text()  # the dead holder's file stays

    resumed = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from step-" in resumed.stdout


def test_runs_started_in_the_same_second_without_a_name_get_their_own_folders(tmp_path, cache_dir):
    """Another run holds the default name of every second this run could start in: it must
    take <name>-2, and leave the other run's folder as it was."""
    overrides = [*FAST, *QUIET, f"runs_root={tmp_path}", f"data.cache_dir={cache_dir}", "trainer.max_steps=2"]
    stem = default_run_name(compose_train(*overrides)).rsplit("-", 2)[0]  # <model>-<objective>
    now = time.time()
    taken = {time.strftime(f"{stem}-%Y%m%d-%H%M%S", time.localtime(now + s)) for s in range(-1, 300)}
    for name in taken:
        (tmp_path / name).mkdir()
        (tmp_path / name / "other-run.txt").write_text("not this run's\n")
    before = files_of(tmp_path)

    run(compose_train(*overrides))

    new = sorted({path.name for path in tmp_path.iterdir()} - taken)
    assert len(new) == 1 and new[0].removesuffix("-2") in taken, new
    assert json.loads((tmp_path / new[0] / "summary.json").read_text())["status"] == "finished"
    after = files_of(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith(new[0] + "/")} == before


# -- 2 and 3. a finished run; the final validation and best.ckpt ---------------------------------


@pytest.fixture(scope="module")
def finished(tmp_path_factory, cache_dir):
    """max_steps=15 with validations every 10: the final one, at step 15, is not on the schedule."""
    root = tmp_path_factory.mktemp("finished")
    train_here(root, cache_dir, *QUIET, "trainer.max_steps=15", name="done")
    return root


def test_the_final_validation_competes_for_best_ckpt(finished):
    run_dir = finished / "done"
    val = assert_readable_metrics(run_dir).dropna(subset=["val/nll"])
    assert len(val) == 2 and val["val/nll"].iloc[-1] < val["val/nll"].iloc[0]  # the final one is best
    best = torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=True)
    assert best["global_step"] == 15
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["best/val/nll"] == pytest.approx(val["val/nll"].iloc[-1], rel=1e-6) == summary["val/nll"]


def test_a_finished_run_run_again_says_so_and_changes_nothing(finished, cache_dir, capsys):
    run_dir = finished / "done"
    before, summary_bytes = files_of(run_dir), (run_dir / "summary.json").read_bytes()

    again = train_here(finished, cache_dir, *QUIET, "trainer.max_steps=15", name="done")

    out = capsys.readouterr().out
    assert "run done is finished at step 15 (trainer.max_steps=15 reached): nothing to do" in out
    assert (run_dir / "summary.json").read_bytes() == summary_bytes
    assert files_of(run_dir) == before  # metrics.csv, checkpoints, config.yaml: all as they were
    assert again == json.loads(summary_bytes)


def test_a_finished_run_continues_when_max_steps_is_raised(finished, cache_dir, tmp_path):
    shutil.copytree(finished / "done", tmp_path / "done", symlinks=True)
    results = {k for k in json.loads((tmp_path / "done" / "summary.json").read_text()) if "/" in k}

    summary = train_here(tmp_path, cache_dir, *QUIET, "trainer.max_steps=22", name="done")

    assert (summary["status"], summary["step"]) == ("finished", 22)
    assert summary["stopped_by"] == "trainer.max_steps=22"
    written = json.loads((tmp_path / "done" / "summary.json").read_text())
    assert results <= set(written)  # never fewer results than before
    metrics = assert_readable_metrics(tmp_path / "done")
    # Logged steps continue where the finished run left off (validations after steps 10, 15, 20, 22).
    assert metrics.dropna(subset=["val/nll"])["step"].tolist() == [9, 14, 19, 21]
    assert torch.load(tmp_path / "done" / "checkpoints" / "best.ckpt", weights_only=True)["global_step"] == 22


# -- 9. Ctrl-C -----------------------------------------------------------------------------------


def start_and_interrupt(tmp_path: Path, cache_dir: Path, name: str, *extra: str) -> tuple[subprocess.Popen, list[str]]:
    """Start a run and send SIGINT once it trains (a step checkpoint and last.ckpt exist)."""
    args = command(tmp_path, cache_dir, name, *QUIET, "trainer.max_steps=40", "checkpoint.every_n_steps=2", *extra)
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    checkpoints = tmp_path / name / "checkpoints"
    while not (step_checkpoints(checkpoints) and os.path.islink(checkpoints / "last.ckpt")):
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    return proc, args


def test_ctrl_c_saves_at_a_batch_boundary_records_interrupted_and_resumes(tmp_path, cache_dir):
    proc, args = start_and_interrupt(tmp_path, cache_dir, "ctrl-c")
    out, err = proc.communicate(timeout=300)

    assert proc.returncode == EXIT_INTERRUPTED, err[-3000:]
    assert "Ctrl-C: saving a checkpoint after this batch" in err
    stopped = int(out.split("stopped by Ctrl-C at step ")[1].split(";")[0])
    checkpoints = tmp_path / "ctrl-c" / "checkpoints"
    assert os.readlink(checkpoints / "last.ckpt") == f"step-{stopped}.ckpt"
    verify_checkpoint(checkpoints / f"step-{stopped}.ckpt")
    summary = json.loads((tmp_path / "ctrl-c" / "summary.json").read_text())
    assert (summary["status"], summary["step"]) == ("interrupted", stopped)

    resumed = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from step-{stopped}.ckpt" in resumed.stdout
    assert json.loads((tmp_path / "ctrl-c" / "summary.json").read_text())["status"] == "finished"


# Steps of a few tenths of a second: the second Ctrl-C must land before the first one's batch
# ends and its save finishes (with FAST's ~10 ms steps a quiet machine sometimes finished first).
SLOW_STEPS = ["model.d_model=256", "model.ffn_hidden=1024", "model.n_heads=4", "model.n_kv_heads=4",
              "data.batch_size=32", "data.seq_len=128"]


def test_a_second_ctrl_c_stops_at_once_without_saving(tmp_path, cache_dir):
    proc, _ = start_and_interrupt(tmp_path, cache_dir, "twice", *SLOW_STEPS)
    for line in proc.stderr:  # the first one is acknowledged: now the second
        if line.startswith("Ctrl-C: saving"):
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=300)

    assert proc.returncode == EXIT_INTERRUPTED, err[-3000:]
    assert "stopped at once by a second Ctrl-C" in err and "Traceback" not in err
    assert "stopped by Ctrl-C at step" not in out  # not the first Ctrl-C's saved stop
    assert not (tmp_path / "twice" / "summary.json").exists()
    # Stopped without a save of its own: what is left is a good step checkpoint to resume from
    # (the second Ctrl-C may land between a periodic save and its last.ckpt link).
    checkpoints = tmp_path / "twice" / "checkpoints"
    last = checkpoints / os.readlink(checkpoints / "last.ckpt")
    verify_checkpoint(last)
    assert checkpoint_step(last) <= checkpoint_step(step_checkpoints(checkpoints)[0])
