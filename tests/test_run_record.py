"""What a run's record says about how it was started (issue 13): a re-run with the same
``name=`` and other settings is refused with the differences unless ``resume=force``; a Hydra
multirun with a fixed name is refused; starts.jsonl keeps every start's overrides and git
commit; and the CPU default's 4.5-minute guard applies to the default run only.

The composed ``run`` is called as the command line does; where Hydra's multirun mode or a signal
is the point, ``python -m lit_illada.train`` runs in a subprocess.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from lit_illada.checkpoints.files import checkpoint_step, step_checkpoints
from lit_illada.checkpoints.run_record import RunRecord
from lit_illada.checkpoints.source_version import git_state
from lit_illada.config.checks import exit_on_bad_input
from lit_illada.config.choices import record_choices
from lit_illada.train import run
from tests.runs import FAST, compose_train
from tests.runs import train as train_here
from tests.test_resume import ROOT, command
from tests.test_run_safety import files_of

pytestmark = pytest.mark.slow

QUIET = ["num_samples=0", "trainer.val_check_interval=2"]
GUARD = "00:00:04:30"  # conf/trainer/cpu.yaml's max_time


@pytest.fixture(scope="module")
def started(tmp_path_factory, cache_dir) -> Path:
    """A finished 4-step run ``r`` (trainer.max_steps=4 given on the command line)."""
    root = tmp_path_factory.mktemp("started")
    train_here(root, cache_dir, *QUIET, "trainer.max_steps=4", name="r")
    return root


def copy_of(started: Path, tmp_path: Path) -> Path:
    shutil.copytree(started / "r", tmp_path / "r", symlinks=True)
    return tmp_path / "r"


def recorded_lr(run_dir: Path) -> float:
    return OmegaConf.load(run_dir / "config.yaml").optimizer.lr


# -- a changed configuration ---------------------------------------------------------------------


def test_a_rerun_with_other_settings_is_refused_with_the_differences(started, tmp_path, cache_dir, capsys):
    run_dir = copy_of(started, tmp_path)
    lr = recorded_lr(run_dir)
    before = files_of(run_dir)
    capsys.readouterr()
    # A changed setting, a raised limit (allowed) and runtime-only keys (allowed, not listed).
    cfg = compose_train(*FAST, *QUIET, f"runs_root={tmp_path}", "name=r", f"data.cache_dir={cache_dir}",
                        "trainer.max_steps=6", "optimizer.lr=0.01", "threads=1", "logger=none",
                        "checkpoint.keep_last=3")
    record_choices(cfg)  # as the command line hands it over: Hydra's own node taken out

    with pytest.raises(SystemExit) as refused:
        exit_on_bad_input(run, cfg)

    assert refused.value.code == 2
    err = capsys.readouterr().err
    first, *listed = err[err.index("error: "):].rstrip().splitlines()
    assert first.startswith(f"error: name=r: {run_dir}/ was trained with other settings (1 changed, listed")
    assert "resume=force to continue it with the new ones" in first and "another name=" in first
    assert listed[0] == f"  optimizer.lr: {lr} -> 0.01"
    assert listed[1].startswith("  (its last start's overrides: ") and "trainer.max_steps=4" in listed[1]
    assert len(listed) == 2  # neither the raised limit nor threads, logger or checkpoint settings
    assert files_of(run_dir) == before  # refused before anything was written


def test_resume_force_continues_with_the_new_settings_and_the_same_settings_resume(
    started, tmp_path, cache_dir, capsys
):
    run_dir = copy_of(started, tmp_path)
    lr = recorded_lr(run_dir)
    capsys.readouterr()

    summary = train_here(tmp_path, cache_dir, *QUIET, "trainer.max_steps=6", "optimizer.lr=0.01",
                         "resume=force", name="r")

    out = capsys.readouterr().out
    assert (summary["status"], summary["step"]) == ("finished", 6)
    assert (f"run r: continues with changed settings (resume=force): optimizer.lr: {lr} -> 0.01; "
            f"trainer.max_steps: 4 -> 6") in out
    assert recorded_lr(run_dir) == 0.01  # config.yaml holds the settings it now trains with
    forced = RunRecord(run_dir).read_starts()[-1]
    assert forced["resume"] == "force" and forced["resumed_from"] == "step-4.ckpt"
    assert forced["changed"] == [f"optimizer.lr: {lr} -> 0.01", "trainer.max_steps: 4 -> 6"]

    # The new settings again (no resume=force needed), with a raised limit: it resumes.
    summary = train_here(tmp_path, cache_dir, *QUIET, "trainer.max_steps=8", "optimizer.lr=0.01", name="r")

    assert (summary["status"], summary["step"]) == ("finished", 8)
    again = RunRecord(run_dir).read_starts()[-1]
    assert again["changed"] == ["trainer.max_steps: 6 -> 8"] and again["resumed_from"] == "step-6.ckpt"


# -- starts.jsonl ----------------------------------------------------------------------------------


def test_every_start_and_resume_is_recorded_with_its_overrides_and_commit(started, tmp_path, cache_dir):
    run_dir = copy_of(started, tmp_path)

    train_here(tmp_path, cache_dir, *QUIET, "trainer.max_steps=6", "threads=1", "logger=none",
               "trainer.enable_model_summary=true", name="r")

    first, resumed = RunRecord(run_dir).read_starts()
    assert first["resumed_from"] is None and "changed" not in first
    assert "trainer.max_steps=4" in first["overrides"] and "threads=1" not in first["overrides"]
    assert resumed["resumed_from"] == "step-4.ckpt"
    assert {"trainer.max_steps=6", "threads=1", "logger=none"} <= set(resumed["overrides"])
    assert resumed["changed"] == ["trainer.max_steps: 4 -> 6"]  # runtime-only keys are not changes
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode == 0:  # the tests run from a git checkout
        for entry in (first, resumed):
            assert entry["git"]["commit"] == head.stdout.strip() and isinstance(entry["git"]["dirty"], bool)
    else:
        assert "git" not in first and "git" not in resumed


def test_no_commit_is_recorded_without_a_checkout_or_without_git(tmp_path, monkeypatch):
    assert git_state(tmp_path) is None  # not inside a checkout
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))  # no git program
    assert git_state() is None


# -- Hydra multirun --------------------------------------------------------------------------------


def test_a_multirun_with_a_fixed_name_is_refused(tmp_path, cache_dir):
    def multirun(name: str) -> subprocess.CompletedProcess:
        args = [sys.executable, "-m", "lit_illada.train", "-m", *FAST, *QUIET,
                f"runs_root={tmp_path / 'runs'}", f"data.cache_dir={cache_dir}", "trainer.max_steps=1",
                "seed=1,2", name, f"hydra.sweep.dir={tmp_path / 'multirun'}"]
        return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)

    refused = multirun("name=fixed")

    assert refused.returncode == 2, refused.stderr[-3000:]
    message = refused.stderr.strip().splitlines()[-1]
    assert message.startswith("error: name=fixed with Hydra multirun (-m): every job would write the same")
    assert "drop name=" in message and "'name=fixed-${hydra:job.num}'" in message
    assert not (tmp_path / "runs" / "fixed").exists()

    per_job = multirun("name=fixed-${hydra:job.num}")  # the suggested fix

    assert per_job.returncode == 0, per_job.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["fixed-0", "fixed-1"]


# -- the CPU time guard ----------------------------------------------------------------------------


def test_the_cpu_time_guard_applies_to_the_default_run_only(tmp_path, cache_dir, capsys):
    # The default run (no limit given): stopped by SIGTERM once it trains, to keep the test short.
    args = command(tmp_path, cache_dir, "d", "num_samples=0", "checkpoint.every_n_steps=1")
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not step_checkpoints(tmp_path / "d" / "checkpoints"):
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 75, err[-3000:]  # EXIT_PREEMPTED
    assert (f"run d: stops at trainer.max_steps=400 or trainer.max_time={GUARD}, whichever comes first "
            f"(trainer.max_time is the CPU default's guard") in out
    assert OmegaConf.load(tmp_path / "d" / "config.yaml").trainer.max_time == GUARD
    stopped = checkpoint_step(step_checkpoints(tmp_path / "d" / "checkpoints")[0])
    capsys.readouterr()

    # Resumed with an explicit step limit: that many steps, however long they take.
    summary = train_here(tmp_path, cache_dir, "num_samples=0", "checkpoint.every_n_steps=1",
                         f"trainer.max_steps={stopped + 1}", name="d")

    out = capsys.readouterr().out
    assert (summary["status"], summary["stopped_by"]) == ("finished", f"trainer.max_steps={stopped + 1}")
    assert (f"run d: stops at trainer.max_steps={stopped + 1} (a limit given on the command line: the CPU "
            f"default's trainer.max_time guard is off)") in out
    assert OmegaConf.load(tmp_path / "d" / "config.yaml").trainer.max_time is None
    resumed = RunRecord(tmp_path / "d").read_starts()[-1]
    assert resumed["changed"] == [f"trainer.max_steps: 400 -> {stopped + 1}",
                                  f"trainer.max_time: {GUARD} -> null"]
