"""The GPU check (benchmarks/gpu_check.py) runs every section on CPU at tiny shapes (``--smoke``), so
no code path of it rots between the rare runs on a lent GPU. The smoke numbers are not measurements:
these tests check that each section ran and that what it reports is sane, never a speed.
"""

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = {"a_training", "b_sharded", "c_memory", "d_attention", "e_sampler_8b", "f_trained_sampler"}
POLICIES = {f"{p}{c}" for p in ("confidence", "threshold", "factor", "eb") for c in ("", "+prefix")}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One smoke run for the module (2-rank FSDP training and a sort model: about 2 minutes on 2
    cores). ``--peak-tflops`` gives the CPU a peak, so that the MFU code path runs too."""
    out = tmp_path_factory.mktemp("gpu_check") / "smoke.json"
    command = [
        sys.executable,
        "benchmarks/gpu_check.py",
        "--smoke",
        "--out",
        str(out),
        "--peak-tflops",
        "0.05",
    ]
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)  # a hang guard only
    print(f"smoke run: {time.perf_counter() - started:.0f} s")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
    return json.loads(out.read_text()), proc.stdout


def section(report: dict, key: str) -> dict:
    return report["sections"][key]


@pytest.mark.slow
def test_every_section_runs_and_reports_its_targets(smoke):
    report, stdout = smoke
    assert set(report["sections"]) == SECTIONS
    failed = {k: s.get("traceback") for k, s in report["sections"].items() if s["status"] != "ok"}
    assert not failed
    assert report["smoke"] is True and report["environment"]["torch"] == torch.__version__
    assert report["peak_flops"] == pytest.approx(0.05e12)
    for key in SECTIONS:
        targets = section(report, key)["targets"]
        assert targets and all(t["met"] in (True, False, None) and t["goal"] for t in targets)
        assert section(report, key)["title"] in stdout  # the printed table names every section
    assert "targets:" in stdout and "met" in stdout


@pytest.mark.slow
def test_training_throughput_has_both_loops_eager_and_compiled(smoke):
    training = section(smoke[0], "a_training")
    for mode in ("eager", "compiled"):
        for loop in ("bare", "lightning"):
            numbers = training[mode][loop]
            assert numbers["tokens_per_s"] > 0
            # executed FLOPs leave out the LM head where nothing is masked: never more than model FLOPs
            assert 0 < numbers["mfu_executed"] <= numbers["mfu_model"]
        assert training[mode]["ratio_lightning_over_bare"] > 0
        # the same weights, batch, masks, optimizer and clipping: both loops train identically
        assert len(training[mode]["bare"]["losses"]) == len(training[mode]["lightning"]["losses"]) > 1
        assert training[mode]["loss_max_abs_diff"] <= 1e-6
    assert training["compiled"]["compile"] != "eager"  # the Lightning side compiled its blocks


@pytest.mark.slow
def test_sharded_training_resumes_with_the_uninterrupted_runs_losses(smoke):
    sharded = section(smoke[0], "b_sharded")
    losses = sharded["losses"]
    assert sorted(map(int, losses["uninterrupted"])) == list(range(20))
    assert all(math.isfinite(v) for v in losses["uninterrupted"].values())
    assert sharded["resumed_complete"] and sharded["max_abs_diff_after_resume"] <= 1e-6
    assert sharded["resumed_from"].endswith("step-10.ckpt")
    assert sharded["checkpoint"] == {"path": "step-20.ckpt", "dcp": True, "distcp_files": 2}  # one per rank


@pytest.mark.slow
def test_memory_plan_is_computed_and_the_cpu_measurement_is_null_with_a_reason(smoke):
    memory = section(smoke[0], "c_memory")
    plan = memory["plan_bytes"]
    assert (
        plan["total"]
        == sum(plan[k] for k in ("params", "grads", "optimizer", "activations", "transient"))
        > 0
    )
    assert memory["measured_peak_bytes"] is None and "CUDA" in memory["measured_why_null"]
    assert all(math.isfinite(loss) for loss in memory["losses"])  # the training step it plans for ran


@pytest.mark.slow
def test_attention_backends_agree_and_xformers_is_reported_when_missing(smoke):
    attention = section(smoke[0], "d_attention")
    backends = attention["backends"]
    for name in ("sdpa", "eager"):
        assert backends[name]["rel_err"] <= 2e-2 and backends[name]["causal_rel_err"] <= 2e-2
        assert backends[name]["forward_s"] > 0 and backends[name]["forward_backward_s"] > 0
    xformers = backends["xformers"]
    assert xformers["status"] in ("ok", "unavailable")
    if xformers["status"] == "unavailable":  # no CUDA here: a clear message, not a crash
        assert "xformers" in xformers["message"]
    assert attention["model_logits_rel_err_eager_vs_sdpa"] <= 2e-2


@pytest.mark.slow
def test_sampler_speed_matches_the_reference_loop_token_for_token(smoke):
    sampler = section(smoke[0], "e_sampler_8b")
    runs = sampler["runs"]
    for steps in (32, 8):
        assert runs[f"confidence/{steps}"]["identical_to_reference"]
        for name in ("reference", "confidence", "confidence+prefix", "confidence+dual"):
            assert runs[f"{name}/{steps}"]["nfe"] == steps and runs[f"{name}/{steps}"]["tokens_per_s"] > 0
    assert sampler["seconds_per_forward"] > 0


@pytest.mark.slow
def test_trained_model_is_evaluated_with_every_policy_with_and_without_cache(smoke):
    trained = section(smoke[0], "f_trained_sampler")
    assert set(trained["policies"]) == POLICIES
    for metrics in trained["policies"].values():
        assert metrics["n"] == 16 and 0 <= metrics["exact_match"] <= 1
        assert metrics["nfe"] >= 1 and metrics["tokens_per_s"] > 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_the_full_check_without_cuda_is_refused_with_the_fix():
    proc = subprocess.run(
        [sys.executable, "benchmarks/gpu_check.py"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "gpu_check: no CUDA device is visible; run the CPU smoke check with --smoke"
    ]


def test_a_failing_section_is_recorded_and_a_slow_one_is_stopped_at_its_limit():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from gpu_check_sections.common import Section, Settings, run_section
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    settings = Settings(smoke=True, device=torch.device("cpu"), peak_flops=None, workdir=ROOT, gpus=0)

    def broken(settings, section):
        section.result["measured"] = 1.0  # taken before the failure: kept
        raise ValueError("the kernel returned garbage")

    failed = Section("x", "broken", budget_s=30)
    run_section(failed, broken, settings)
    assert failed.result["status"] == "error" and failed.result["measured"] == 1.0
    assert failed.result["error"] == "ValueError: the kernel returned garbage"

    def hangs(settings, section):
        time.sleep(30)

    slow = Section("y", "hangs", budget_s=0.5)
    run_section(slow, hangs, settings)
    assert slow.result["status"] == "error" and "time limit" in slow.result["error"]
