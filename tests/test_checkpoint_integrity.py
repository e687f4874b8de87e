"""Damaged checkpoints are caught with the file named, a full disk stops a run cleanly, and every
checkpoint the project writes loads with ``torch.load(weights_only=True)``."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch.serialization import get_unsafe_globals_in_checkpoint

from lit_illada.checkpoints import files as checkpoint_files
from lit_illada.checkpoints.loader import load
from lit_illada.checkpoints.files import (
    CheckpointError,
    newest_good_checkpoint,
    safe_load,
    verify_checkpoint,
    write_atomically,
)
from lit_illada.training.checkpoint_io import AtomicCheckpointIO
from tests.runs import train

pytestmark = pytest.mark.slow

STEPS = ["checkpoint.every_n_steps=3", "trainer.max_steps=12", "trainer.val_check_interval=6",
         "num_samples=0"]


def truncate(path: Path) -> None:
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size // 3)


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the tensor data: torch.load alone would not notice
    path.write_bytes(bytes(data))


def test_truncated_newest_checkpoint_is_named_and_the_previous_one_resumes(tmp_path, cache_dir, capsys):
    train(tmp_path, cache_dir, *STEPS)
    checkpoints = tmp_path / "run" / "checkpoints"
    newest = (checkpoints / "last.ckpt").resolve()
    assert newest.name == "step-12.ckpt" and (checkpoints / "step-9.ckpt").exists()
    truncate(newest)
    before = pd.read_csv(tmp_path / "run" / "metrics.csv").dropna(subset=["val/nll"])
    capsys.readouterr()
    summary = train(tmp_path, cache_dir, *STEPS)  # the same command again
    out = capsys.readouterr().out
    assert f"warning: {newest}: truncated or not a checkpoint" in out
    assert f"resuming from {checkpoints / 'step-9.ckpt'} instead" in out
    assert summary["step"] == 12
    verify_checkpoint(checkpoints / "last.ckpt")  # rewritten, whole
    # The fallback continues exactly: the last validation, replayed after the fallback, gives the
    # same number, and metrics.csv holds it once (the replayed steps' old rows are dropped).
    after = pd.read_csv(tmp_path / "run" / "metrics.csv").dropna(subset=["val/nll"])
    assert after["step"].is_unique
    assert after["val/nll"].tolist() == before["val/nll"].tolist()


def test_damaged_files_fail_verification_and_loading_with_the_file_named(trained_run, tmp_path):
    good = trained_run / "checkpoints" / "best.ckpt"
    verify_checkpoint(good)
    damages = ((truncate, "truncated or not a checkpoint"), (flip_a_byte, "fails its CRC32 check"))
    for damage, message in damages:
        bad = tmp_path / f"{damage.__name__}.ckpt"
        shutil.copy(good, bad)
        damage(bad)
        with pytest.raises(CheckpointError, match=message) as caught:
            verify_checkpoint(bad)
        assert str(bad) in str(caught.value)
        with pytest.raises(ValueError, match=f"ckpt={bad}: cannot be used"):
            load(bad, key="ckpt")
    # A dangling last.ckpt and a broken step checkpoint leave nothing to resume from: said so.
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (folder / "last.ckpt").symlink_to("step-5.ckpt")
    (folder / "step-3.ckpt").write_bytes(b"not a checkpoint")
    said = []
    assert newest_good_checkpoint(folder, report=said.append) is None
    assert "step-5.ckpt: does not exist" in said[0] and "step-3.ckpt: truncated" in said[1]
    assert all("no older good checkpoint, starting from scratch" in line for line in said)


def test_full_disk_stops_the_run_with_a_clear_error_and_keeps_the_last_good_one(tmp_path, cache_dir,
                                                                                 monkeypatch):
    # Only the free-space query is simulated: the disk "fills up" once step-6.ckpt is written.
    def free_bytes(folder):
        return 0 if (Path(folder) / "step-6.ckpt").exists() else 10**15

    monkeypatch.setattr(checkpoint_files, "free_bytes", free_bytes)
    with pytest.raises(SystemExit, match="not enough disk space to save .*step-9.ckpt") as stopped:
        train(tmp_path, cache_dir, *STEPS)
    assert "GiB are free" in str(stopped.value) and "checkpoints already there are kept" in str(stopped.value)
    checkpoints = tmp_path / "run" / "checkpoints"
    assert (checkpoints / "last.ckpt").resolve().name == "step-6.ckpt"
    verify_checkpoint(checkpoints / "last.ckpt")
    assert safe_load(checkpoints / "last.ckpt")["global_step"] == 6
    assert not list(checkpoints.glob(".*"))  # no temporary file left behind
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "failed" and "disk space" in summary["error"]


def test_a_save_the_disk_cannot_hold_is_refused_before_writing(tmp_path, monkeypatch):
    target = tmp_path / "step-1.ckpt"
    write_atomically({"w": torch.zeros(1000), "global_step": 1}, target)
    monkeypatch.setattr(checkpoint_files, "free_bytes", lambda folder: 100)
    with pytest.raises(OSError, match="needs about 0.00 GiB, 0.00 GiB are free"):
        write_atomically({"w": torch.ones(1000), "global_step": 1}, target)
    assert torch.equal(safe_load(target)["w"], torch.zeros(1000)) and len(list(tmp_path.iterdir())) == 1


def test_every_checkpoint_the_project_writes_loads_with_weights_only(tmp_path, cache_dir):
    train(tmp_path, cache_dir, "ema_decay=0.9", "checkpoint.every_epoch=true", "num_samples=0",
          "+trainer.limit_train_batches=4", "trainer.max_steps=8", "trainer.val_check_interval=4")
    files = sorted((tmp_path / "run" / "checkpoints").glob("*.ckpt"))
    names = {p.name for p in files}
    assert {"best.ckpt", "last.ckpt", "step-8.ckpt", "epoch-1.ckpt", "epoch-2.ckpt"} <= names
    for path in files:
        assert get_unsafe_globals_in_checkpoint(path) == [], path  # nothing beyond torch's allow-list
        state = torch.load(path, map_location="cpu", weights_only=True)
        assert {"state_dict", "loops", "callbacks", "lit_illada"} <= set(state)
        assert load(path).net.config.d_model == 64
    assert "RNGStates" in state["callbacks"] and "EMAWeightAveraging" in state["callbacks"]
    with pytest.raises(ValueError, match="weights_only=True only"):
        AtomicCheckpointIO().load_checkpoint(files[0], weights_only=False)
