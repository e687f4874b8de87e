"""Numbers that mean what their names say: bits per byte only over bytes, threshold decisions
from float64 probabilities, MFU under named FLOP counts, and the threshold sampler's promise.

Expected values are worked out by hand here, not by calling the code under test.
"""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir

from lit_illada.config.paths import CONF_DIR
from lit_illada.plan import report
from lit_illada.sampling import FactorSampler, ThresholdSampler
from tests.runs import train
from tests.test_sampling import MASK_ID, VOCAB

# ------------------------------------------------------------------------------- FLOPs

# tests/runs.py FAST on the tiny preset: 2 layers, d 64, 2 heads of 32, ffn 128, vocab 264
# (tied), seq 64. Parameters: embedding = head 264·64 = 16,896; per block two norms 2·64,
# q/k/v/out 4·64·64 = 16,384, gate/up/down 3·128·64 = 24,576, so 41,088; final norm 64.
PARAMS = 16_896 + 2 * 41_088 + 64  # 99,136, the tied head included, no input embedding apart
ATTENTION = 12 * 2 * 2 * 32 * 64  # 12·layers·heads·head_dim·seq: QKᵀ and AV, forward + backward
MODEL_FLOPS = 6 * PARAMS + ATTENTION  # 693,120 per token
HEAD_FLOPS = 6 * 264 * 64  # 101,376: the LM head at one position, forward + backward
PEAK = 1e12


def test_the_plan_prints_model_and_executed_flops_under_their_names():
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            config_name="plan",
            overrides=["model=tiny", "model.n_layers=2", "model.d_model=64", "model.n_heads=2",
                       "model.n_kv_heads=2", "model.ffn_hidden=128", "data.seq_len=64"],
        )  # fmt: skip
    text, _ = report(cfg)
    executed = MODEL_FLOPS - 0.5 * HEAD_FLOPS  # pretraining masks half the positions on average
    assert f"model FLOPs: {MODEL_FLOPS:.3e}/token" in text  # 6.931e+05
    assert f"executed FLOPs: {executed:.3e}/token" in text  # 6.424e+05
    assert "MFU (of model FLOPs)" in text


@pytest.mark.slow
def test_training_logs_mfu_of_model_and_of_executed_flops(tmp_path, cache_dir, monkeypatch):
    # No GPU here, so no peak to divide by: a made-up 1 TFLOP/s device stands in for one.
    monkeypatch.setattr("lit_illada.train.peak_flops", lambda accelerator: PEAK)
    # The AR objective runs the head at a known share of positions: every one but the last
    # of each row (no truncation), 8·63 of the 8·64 tokens of a step.
    ar = ["objective=autoregressive", "objective.truncate_fraction=0", "trainer.log_every_n_steps=1"]
    train(tmp_path, cache_dir, *ar, "trainer.max_steps=3", "trainer.val_check_interval=3")
    steps = pd.read_csv(tmp_path / "run" / "metrics.csv").dropna(subset=["train/tokens_per_s"])
    assert len(steps) == 3 and "train/mfu" not in steps.columns
    model = steps["train/tokens_per_s"] * MODEL_FLOPS / PEAK
    executed = model * (512 * MODEL_FLOPS - 8 * HEAD_FLOPS) / (512 * MODEL_FLOPS)
    pd.testing.assert_series_equal(steps["train/mfu_model"], model, check_names=False, rtol=1e-5)
    pd.testing.assert_series_equal(steps["train/mfu_executed"], executed, check_names=False, rtol=1e-5)


# ------------------------------------------------------------------------------- val/bpb


@pytest.mark.slow
def test_bits_per_byte_only_for_byte_tokenizer_pretraining(tmp_path, cache_dir):
    pretrain = train(tmp_path, cache_dir, "trainer.max_steps=2", "trainer.val_check_interval=2", name="pt")
    assert pretrain["val/bpb"] == pytest.approx(pretrain["val/nll"] / math.log(2))
    # SFT rows average the NLL over answers and their EOS padding: no bytes of text.
    sft = ["stage=sft", "data.seq_len=256", "data.batch_size=4", "data.val_batches=1"]
    train(tmp_path, cache_dir, *sft, "trainer.max_steps=2", "trainer.val_check_interval=2", name="sft")
    metrics = pd.read_csv(tmp_path / "sft" / "metrics.csv")
    summary = json.loads((tmp_path / "sft" / "summary.json").read_text())
    assert metrics["val/nll"].notna().any() and "val/nll" in summary
    assert "val/bpb" not in metrics.columns and "val/bpb" not in summary


# ------------------------------------------------------------------- float64 confidences


class TwoTokenDenoiser:
    """bf16 logits, the same at every position: token 2 at ``top``, token 3 at ``second``, every
    other token (the mask included) impossible."""

    def __init__(self, top: float, second: float):
        self.logits = torch.full((VOCAB,), -torch.inf, dtype=torch.bfloat16)
        self.logits[2], self.logits[3] = top, second

    def probability(self, dtype: torch.dtype) -> float:
        return F.softmax(self.logits.to(dtype), dim=-1)[2].item()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(*x.shape, VOCAB).clone()


def test_threshold_decides_on_float64_probabilities():
    # A lead of 2.1875 (both logits exact in bf16): p = 1 / (1 + e^-2.1875) = 0.89912 < 0.9, while
    # the bf16 softmax rounds it to 0.8984375 = 230/256, which is also what 0.9 becomes in bf16,
    # so in bf16 both positions would pass tau = 0.9 and commit at once.
    denoiser = TwoTokenDenoiser(top=2.1875, second=0.0)
    assert denoiser.probability(torch.float64) == pytest.approx(0.89912, abs=1e-5)
    assert torch.tensor(denoiser.probability(torch.bfloat16), dtype=torch.bfloat16) >= 0.9  # bf16 says yes
    sampler = ThresholdSampler(threshold=0.9, gen_length=2, block_length=2, mask_id=MASK_ID)
    result = sampler.generate(denoiser, torch.tensor([[1]]))
    assert result.committed_per_step == [1, 1]  # float64: neither passes, one per step


def test_factor_rule_decides_on_float64_probabilities():
    # A lead of 3 - 0.80078125 = 2.19921875: p = 0.90018, but bf16 rounds it to 0.8984375. With
    # f = 0.3 the second-ranked must reach 1 - 0.3/3 = 0.9: it does in float64 (both commit in
    # one step), not in bf16.
    denoiser = TwoTokenDenoiser(top=3.0, second=0.80078125)
    assert denoiser.probability(torch.float64) == pytest.approx(0.90018, abs=1e-5)
    assert denoiser.probability(torch.bfloat16) == 0.8984375
    sampler = FactorSampler(factor=0.3, gen_length=2, block_length=2, mask_id=MASK_ID)
    result = sampler.generate(denoiser, torch.tensor([[1]]))
    assert result.committed_per_step == [2]


def test_threshold_one_can_commit_several_tokens_in_one_step():
    # A logit lead of 60 saturates even float64: p == 1.0 exactly at every position, so tau = 1
    # lets all four through at once; the docstring must not promise one per step.
    denoiser = TwoTokenDenoiser(top=60.0, second=0.0)
    assert denoiser.probability(torch.float64) == 1.0
    sampler = ThresholdSampler(threshold=1.0, gen_length=4, block_length=4, mask_id=MASK_ID)
    assert sampler.generate(denoiser, torch.tensor([[1]])).committed_per_step == [4]
    doc = " ".join(ThresholdSampler.__doc__.split())
    assert "commits one token per step" not in doc and "several positions may still commit" in doc
