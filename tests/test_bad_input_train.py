"""More bad input to ``train`` (issue 14), in the style of tests/test_bad_input.py and through its
machinery: the real entry point, exit code 2, one line naming the key and the fix, and no file
created or changed; a case under a new run name also checks that no half-made run folder is
left behind. Two inputs that look odd are accepted: a run directory as ``init_from=``, and SFT
without ``init_from=`` (which says that it starts from random weights)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.runs import train
from tests.test_bad_input import (
    Case,
    base_args,
    make_inputs,
    no_process_launch,  # noqa: F401 - a fixture, used by name below
    run_entry,
    snapshot,
)

pytestmark = pytest.mark.slow


@dataclass
class TrainCase(Case):
    new_run: bool = False  # under a new name= (else a re-run of the existing run, with the mistake)


CASES = [
    TrainCase(
        "init-from-a-folder-without-a-model",
        "train",
        ["init_from={tmp}/notes"],
        ["init_from={tmp}/notes: not a model lit_illada can load", "a run directory"],
        needs=["notes_folder"],
        new_run=True,
    ),
    TrainCase(
        "init-from-an-empty-file",
        "train",
        ["init_from={tmp}/empty.ckpt"],
        ["init_from={tmp}/empty.ckpt: cannot be read as a checkpoint (an empty file, 0 bytes)",
         "init_from= takes"],
        needs=["empty_file"],
        new_run=True,
    ),
    TrainCase(
        "init-from-a-text-file",
        "train",
        ["init_from={tmp}/notes.txt"],
        ["init_from={tmp}/notes.txt: cannot be read as a checkpoint (a text file,", "init_from= takes"],
        needs=["text_file"],
        new_run=True,
    ),
    TrainCase(
        "runs-root-is-a-file",
        "train",
        ["runs_root={tmp}/notes.txt"],
        ["runs_root={tmp}/notes.txt: {tmp}/notes.txt is a file, not a folder", "choose another runs_root="],
        needs=["text_file"],
    ),
    TrainCase(
        "runs-root-read-only",
        "train",
        ["runs_root={tmp}/read-only/runs"],
        ["runs_root={tmp}/read-only/runs: cannot write into {tmp}/read-only", "choose a writable runs_root="],
        needs=["read_only"],
    ),
    TrainCase(
        "max-time-not-a-duration",
        "train",
        ["trainer.max_time=abc"],
        ["trainer.max_time='abc': expected DD:HH:MM:SS", "null for no time limit"],
        new_run=True,
    ),
    TrainCase(
        "max-time-a-number",
        "train",
        ["trainer.max_time=3600"],
        ["trainer.max_time=3600: expected DD:HH:MM:SS"],
    ),
    # Lightning refuses it only once the run folder exists: that folder must go again.
    TrainCase(
        "trainer-argument-lightning-refuses",
        "train",
        ["+trainer.no_such_argument=1"],
        ["no_such_argument"],
        new_run=True,
    ),
]


def make_read_only(folder: Path) -> None:
    """A folder this process cannot write: mode 555, and for root (who ignores modes) the
    immutable flag. Skips the case where neither holds on this machine."""
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False)
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError:
        return
    make_writable(folder)
    pytest.skip("cannot make a read-only folder here (root without chattr +i)")


def make_writable(folder: Path) -> None:
    if os.geteuid() == 0 and shutil.which("chattr"):
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True, check=False)
    folder.chmod(0o755)


def make_train_inputs(tmp: Path, run: Path, needs: list[str]) -> dict[str, str]:
    values = make_inputs(tmp, run, needs)
    if "notes_folder" in needs:
        (tmp / "notes").mkdir()
        (tmp / "notes" / "todo.txt").write_text("try a larger lr\n")
    if "empty_file" in needs:
        (tmp / "empty.ckpt").write_bytes(b"")
    if "text_file" in needs:
        (tmp / "notes.txt").write_text("my notes, not a checkpoint\n")
    if "read_only" in needs:
        make_read_only(tmp / "read-only")
    return values


@pytest.mark.usefixtures("no_process_launch")
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_train_input_fails_fast_and_leaves_no_run_folder(case, trained_run, cache_dir, tmp_path, capsys):
    runs = tmp_path / "runs"
    shutil.copytree(trained_run, runs / "trained", symlinks=True)  # an existing run a mistake must not touch
    try:
        values = make_train_inputs(tmp_path, runs / "trained", case.needs)
        args = base_args(case, runs, cache_dir)
        if case.new_run:
            args = [arg for arg in args if not arg.startswith("name=")] + ["name=new"]
        args = [arg.format(**values) for arg in [*args, *case.args]]
        before = snapshot(tmp_path)
        capsys.readouterr()

        code, err = run_entry(case, args, tmp_path, capsys)

        assert code == 2, err[-3000:]
        for piece in case.message:
            piece = piece.format(**values)
            assert piece in err, f"{piece!r} not in:\n{err[-3000:]}"
        assert "Traceback" not in err and err.rstrip().splitlines()[-1].startswith("error: ")
        assert not (runs / "new").exists()  # no half-made run folder
        assert snapshot(tmp_path) == before  # nothing created, nothing changed
    finally:
        if (tmp_path / "read-only").exists():
            make_writable(tmp_path / "read-only")


def test_init_from_a_run_directory_starts_from_its_best_checkpoint(trained_run, tmp_path, cache_dir):
    # With a vanishing lr the one step changes nothing measurable: the validation after it
    # scores best.ckpt's weights, which trained_run's summary scored already.
    summary = train(
        tmp_path, cache_dir, f"init_from={trained_run}", "optimizer.lr=1e-12", "trainer.max_steps=1",
        "trainer.val_check_interval=1", "num_samples=0", name="from-run-dir",
    )
    best = json.loads((trained_run / "summary.json").read_text())["best/val/nll"]
    assert summary["val/nll"] == pytest.approx(best, rel=1e-4)


def test_sft_without_init_from_says_it_starts_from_random_weights(tmp_path, cache_dir, capsys):
    train(
        tmp_path, cache_dir, "stage=sft", "data.seq_len=256", "data.batch_size=4", "data.val_batches=1",
        "trainer.max_steps=1", "trainer.val_check_interval=1", "num_samples=0", name="sft",
    )
    assert "(SFT from random initialization: no init_from=)" in capsys.readouterr().out
