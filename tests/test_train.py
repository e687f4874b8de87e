"""End-to-end training runs on the embedded stdlib corpus, small enough for CI."""

import json
import math
import os
import subprocess
import sys

import pandas as pd
import pytest
import torch

from lit_illada.config.checks import ConfigError
from lit_illada.diffusion import ElboWeighting
from tests.runs import FAST, train

pytestmark = pytest.mark.slow

def test_default_objective_learns_and_writes_the_run_record(tmp_path, cache_dir):
    summary = train(tmp_path, cache_dir, "trainer.max_steps=60", "trainer.val_check_interval=10", "optimizer.lr=3e-3")
    record = tmp_path / "run"
    metrics = pd.read_csv(record / "metrics.csv")
    val = metrics.dropna(subset=["val/nll"])
    assert len(val) == 6
    # Validation loss falls, and lands well below the uniform-guess bound ln(260) = 5.56 nats.
    assert val["val/nll"].iloc[-1] < val["val/nll"].iloc[0] - 0.3
    assert summary["val/nll"] == pytest.approx(val["val/nll"].iloc[-1], rel=1e-6)
    assert summary["val/bpb"] == pytest.approx(summary["val/nll"] / math.log(2))
    assert summary["params"] > 0 and summary["train/tokens_per_s"] > 0 and summary["step"] == 60
    assert {"step", "train/loss", "val/loss", "val/nll", "lr"} <= set(metrics.columns)
    assert json.loads((record / "summary.json").read_text())["val/nll"] == summary["val/nll"]
    assert (record / "checkpoints" / "last.ckpt").exists() and (record / "checkpoints" / "best.ckpt").exists()
    assert (record / "loss_curve.png").stat().st_size > 10_000
    samples = [json.loads(line) for line in (record / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 2 and all(s["nfe"] == 16 and s["completion"] for s in samples)
    config = (record / "config.yaml").read_text()
    assert "d_model: 64" in config and "???" not in config


def test_validation_number_is_reproducible(tmp_path, cache_dir):
    a = train(tmp_path, cache_dir, "trainer.max_steps=5", "trainer.val_check_interval=5", name="a")
    b = train(tmp_path, cache_dir, "trainer.max_steps=5", "trainer.val_check_interval=5", name="b")
    assert a["val/nll"] == b["val/nll"]


def test_fused_adamw_clips_under_bf16_mixed_like_the_unfused_one(tmp_path, cache_dir):
    # Lightning's AMP plugin refused to clip for a fused optimizer even under bf16 (no scaler);
    # the module clips itself there. A small clip value makes the clipping decide the updates.
    common = ["trainer.precision=bf16-mixed", "trainer.gradient_clip_val=0.01", "trainer.max_steps=4",
              "trainer.val_check_interval=4", "num_samples=0"]
    fused = train(tmp_path, cache_dir, *common, "optimizer.fused=true", name="fused")
    plain = train(tmp_path, cache_dir, *common, name="plain")
    unclipped = train(tmp_path, cache_dir, *common[:1], *common[2:], "trainer.gradient_clip_val=0", name="unclipped")
    assert fused["val/nll"] == pytest.approx(plain["val/nll"], abs=2e-3)
    assert abs(unclipped["val/nll"] - plain["val/nll"]) > 10 * abs(fused["val/nll"] - plain["val/nll"])


def test_autoregressive_baseline_trains_on_the_same_backbone(tmp_path, cache_dir):
    summary = train(tmp_path, cache_dir, "objective=autoregressive", "trainer.max_steps=30", "trainer.val_check_interval=10")
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv").dropna(subset=["val/nll"])
    assert metrics["val/nll"].iloc[-1] < metrics["val/nll"].iloc[0]
    assert summary["val/nll"] < math.log(260)


def test_sft_fine_tunes_from_a_base_checkpoint(tmp_path, cache_dir):
    train(tmp_path, cache_dir, "trainer.max_steps=10", "trainer.val_check_interval=10", name="base")
    base = tmp_path / "base" / "checkpoints" / "last.ckpt"
    summary = train(
        tmp_path, cache_dir, "stage=sft", f"init_from={base}", "data.seq_len=256", "data.batch_size=4",
        "trainer.max_steps=6", "trainer.val_check_interval=3", "data.val_batches=1", name="sft",
    )
    assert summary["step"] == 6 and math.isfinite(summary["val/nll"])
    config = (tmp_path / "sft" / "config.yaml").read_text()
    assert "ResponseOnly" in config and "answer_length" in config


def test_sft_from_a_checkpoint_of_another_model_is_refused(tmp_path, cache_dir):
    train(tmp_path, cache_dir, "trainer.max_steps=2", "trainer.val_check_interval=2", name="base")
    base = tmp_path / "base" / "checkpoints" / "last.ckpt"
    with pytest.raises(ValueError, match="different model config"):
        train(tmp_path, cache_dir, "stage=sft", f"init_from={base}", "model.d_model=32", name="sft")


class PoisonedWeighting(ElboWeighting):
    """A real weighting component that turns non-finite at step ``after`` (simulates divergence)."""

    calls = 0

    def __init__(self, after: int) -> None:
        self.after = after

    def __call__(self, t, schedule):
        PoisonedWeighting.calls += 1
        w = super().__call__(t, schedule)
        return w * float("nan") if PoisonedWeighting.calls > self.after else w


def test_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, cache_dir):
    PoisonedWeighting.calls = 0
    with pytest.raises(SystemExit, match="loss became nan at step 14"):
        train(
            tmp_path, cache_dir, "trainer.max_steps=30", "trainer.val_check_interval=5", "data.val_batches=1",
            f"weighting._target_={__name__}.PoisonedWeighting", "+weighting.after=16",
        )
    # Calls 1..16 are 14 training steps (0-13) and 2 one-batch validations (after steps 4 and 9);
    # call 17 is step 14. The last checkpoint was written at the validation after step 9.
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    state = torch.load(last, weights_only=True)
    assert state["global_step"] == 10
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values())
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "failed" and "nan" in summary["error"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optimizer.lr=-0.1", "optimizer.lr=-0.1: must be > 0"),
        ("optimizer.lr=fast", "optimizer.lr='fast': expected a number"),
        ("data.seq_len=2048", "data.seq_len=2048 exceeds model.max_seq_len=1024"),
        ("model.vocab_size=200", "model.vocab_size=200 is smaller than the tokenizer's vocabulary (260)"),
        ("data.batch_size=0", "data.batch_size=0: expected a positive integer"),
        ("trainer.max_steps=ten", "trainer.max_steps='ten'"),
    ],
)
def test_bad_values_are_rejected_at_start_up_with_the_key_named(tmp_path, cache_dir, override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        train(tmp_path, cache_dir, override)
    assert not (tmp_path / "run" / "checkpoints").exists()  # nothing was written


def test_empty_corpus_gives_a_clear_error(tmp_path, cache_dir):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ConfigError, match="(?i)empty|no documents"):
        train(tmp_path, cache_dir, "data=text", f"data.corpus.paths=[{empty}]")


def run_cli(*args, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "lit_illada.train", *args], capture_output=True, text=True, timeout=timeout
    )


def test_headline_8b_command_refuses_quickly_without_allocating(tmp_path):
    proc = run_cli("model=illada_8b", "sampler=confidence", f"runs_root={tmp_path}", "logger=none")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "7,615,025,152 parameters" in proc.stderr
    assert "GiB" in proc.stderr and "model=tiny" in proc.stderr and "trainer=fsdp" in proc.stderr
    assert not any(tmp_path.iterdir())


def test_unknown_group_option_on_the_command_line_lists_the_choices(tmp_path):
    proc = run_cli("sampler=fastest", f"runs_root={tmp_path}")
    assert proc.returncode != 0
    assert "sampler=fastest: no such option" in proc.stderr and "confidence" in proc.stderr


def test_same_name_resumes_from_the_last_checkpoint_and_keeps_the_metrics(tmp_path, cache_dir):
    train(tmp_path, cache_dir, "trainer.max_steps=10", "trainer.val_check_interval=5", name="r")
    summary = train(tmp_path, cache_dir, "trainer.max_steps=20", "trainer.val_check_interval=5", name="r")
    assert summary["step"] == 20
    metrics = pd.read_csv(tmp_path / "r" / "metrics.csv")
    train_steps = metrics.dropna(subset=["train/loss"])["step"]
    assert train_steps.min() < 10 < train_steps.max()  # rows from both invocations
    assert metrics.dropna(subset=["val/nll"])["step"].tolist() == [4, 9, 14, 19]


def test_ema_weights_are_used_when_configured(tmp_path, cache_dir):
    summary = train(tmp_path, cache_dir, "ema_decay=0.9", "trainer.max_steps=10", "trainer.val_check_interval=5")
    assert math.isfinite(summary["val/nll"])
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert any("EMAWeightAveraging" in key for key in state["callbacks"])


def test_wandb_logger_writes_an_offline_run_without_a_key(tmp_path, cache_dir, monkeypatch):
    # No W&B server is reachable here: the run must go offline on its own, not fail or hang.
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc key either
    train(tmp_path, cache_dir, "logger=wandb", "trainer.max_steps=4", "trainer.val_check_interval=2", name="wb")
    runs = list((tmp_path / "wb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert list(runs[0].glob("*.wandb"))
    assert (tmp_path / "wb" / "metrics.csv").exists()  # the run record is written as well


def test_wandb_run_names_its_group_components_job_and_samples(tmp_path, cache_dir):
    """What a dashboard filters on, read back from the offline run file the real run wrote."""
    from analysis.wandb_offline import read_offline_run  # noqa: PLC0415
    from lit_illada.config.wandb_settings import WANDB_GROUP_ENV, stable_run_id  # noqa: PLC0415

    # The command line, not the compose API: tags come from Hydra's record of the group choices.
    env = {**os.environ, WANDB_GROUP_ENV: "my-study", "WANDB_MODE": "offline"}  # the sweep driver sets the group
    argv = [sys.executable, "-m", "lit_illada.train", *FAST, "logger=wandb", "noise=cosine", "model.n_kv_heads=1",
            "trainer.max_steps=4", "trainer.val_check_interval=2", f"data.cache_dir={cache_dir}",
            f"runs_root={tmp_path}", "name=tagged"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (folder,) = (tmp_path / "tagged" / "wandb").glob("offline-run-*")
    run = read_offline_run(folder)
    assert (run.id, run.group, run.job_type) == (stable_run_id("tagged"), "my-study", "train")
    assert {"noise=cosine", "attention=gqa1", "backend=sdpa"} <= set(run.tags)
    assert run.config["noise"]["_target_"].endswith("CosineSchedule")  # the resolved config
    assert run.state == "finished"  # wandb.finish() was called
    (table,) = folder.glob("files/media/table/samples_*.table.json")  # the sample generations table
    assert len(json.loads(table.read_text())["data"]) == 2  # num_samples=2 in FAST


def test_summary_describes_the_final_weights_when_training_stops_between_validations(tmp_path, cache_dir):
    summary = train(tmp_path, cache_dir, "trainer.max_steps=7", "trainer.val_check_interval=5")
    val = pd.read_csv(tmp_path / "run" / "metrics.csv").dropna(subset=["val/nll"])
    assert len(val) == 2  # after step 5, and a final one after step 7
    assert summary["val/nll"] == pytest.approx(val["val/nll"].iloc[-1], rel=1e-6)
    assert summary["step"] == 7
