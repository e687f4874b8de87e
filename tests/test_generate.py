"""`python -m lit_illada.generate` on a checkpoint that training wrote."""

import json
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from lit_illada.config.paths import CONF_DIR
from lit_illada.checkpoints.loader import load
from lit_illada.config.checks import ConfigError
from lit_illada.generate import run

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
# Two denoiser calls per batch: a thousand prompts take seconds on a CPU.
QUICK = ["sampler.gen_length=2", "sampler.block_length=2", "sampler.steps=2"]


def generate(*overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return run(compose(config_name="generate", overrides=list(overrides)))


def test_checkpoint_round_trips_the_training_config(trained_run):
    loaded = load(trained_run)
    assert loaded.path.name == "best.ckpt"
    assert loaded.net.config.d_model == 64 and not loaded.net.training
    assert loaded.tokenizer.mask_id == 259 and loaded.objective.causal is False


@pytest.mark.parametrize("sampler", ["confidence", "threshold", "variable_length"])
def test_single_prompt_generates_with_stats(trained_run, sampler, capsys):
    steps = [] if sampler == "threshold" else ["sampler.steps=16"]  # adaptive policies take no steps
    [row] = generate(f"ckpt={trained_run}", 'prompt="def f(x):"', f"sampler={sampler}",
                     "sampler.gen_length=16", "sampler.block_length=8", *steps)
    assert row["prompt"] == "def f(x):"
    assert row["nfe"] >= 1 and row["seconds"] > 0 and row["tokens_per_s"] > 0
    out = capsys.readouterr()
    assert out.out.startswith("def f(x):") and "NFE" in out.err


def test_prompts_file_writes_jsonl_in_input_order(trained_run, tmp_path):
    prompts = ["import os", "class A:", "import re", "x = 1"]
    source = tmp_path / "prompts.jsonl"
    source.write_text("".join(json.dumps({"id": i, "prompt": p}) + "\n" for i, p in enumerate(prompts)))
    generate(f"ckpt={trained_run}", f"prompts_file={source}", "batch_size=2",
             "sampler.gen_length=8", "sampler.block_length=8", "sampler.steps=8", "sampler/cache=prefix")
    rows = [json.loads(line) for line in (tmp_path / "prompts.generations.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [0, 1, 2, 3]
    assert [r["prompt"] for r in rows] == prompts
    assert all(r["nfe"] == 8 for r in rows)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["ckpt=/nonexistent/run", 'prompt="x"'], "no such file or run directory"),
        (["prompt=x", "prompts_file=a.jsonl"], "exactly one of"),
        (["prompt=" + "x" * 80, "sampler.gen_length=1024"], "exceeds the model's max_seq_len=1024"),
    ],
)
def test_bad_generation_requests_fail_clearly(trained_run, overrides, message):
    if not any(o.startswith("ckpt=") for o in overrides):
        overrides.append(f"ckpt={trained_run}")
    with pytest.raises(ConfigError, match=message):
        generate(*overrides)


def test_cli_prints_the_completion(trained_run):
    proc = subprocess.run(
        [sys.executable, "-m", "lit_illada.generate", f"ckpt={trained_run}", "prompt=import",
         "sampler=threshold", "sampler.gen_length=8", "sampler.block_length=8"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("import") and "NFE" in proc.stderr


def write_prompts(path: Path, count: int) -> Path:
    # Lengths vary (the id's digits), so batches by length finish out of input order.
    rows = ({"id": i, "prompt": f"# {i}: x = f(a, b) + 1"} for i in range(count))
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def complete_lines(data: bytes) -> bytes:
    return data[: data.rfind(b"\n") + 1]


def test_killed_prompts_file_run_resumes_without_losing_or_repeating_a_prompt(trained_run, tmp_path):
    prompts = write_prompts(tmp_path / "prompts.jsonl", 1000)
    output = tmp_path / "out.jsonl"
    argv = [sys.executable, "-m", "lit_illada.generate", f"ckpt={trained_run}", f"prompts_file={prompts}",
            f"output={output}", *QUICK, "batch_size=16", "window=64", "device=cpu"]
    with (tmp_path / "first.log").open("w") as log:
        first = subprocess.Popen(argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while not (output.exists() and output.read_bytes().count(b"\n") >= 100):
            log_tail = (tmp_path / "first.log").read_text()[-2000:]
            assert first.poll() is None and time.monotonic() < deadline, log_tail
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        first.wait()
    before = complete_lines(output.read_bytes())
    written = before.count(b"\n")
    assert 100 <= written < 1000  # killed part-way

    second = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    assert f"{written} of 1000 prompts already generated; resuming" in second.stderr
    after = output.read_bytes()
    assert after.startswith(before)  # the rows written before the kill are untouched
    rows = [json.loads(line) for line in after.splitlines()]
    assert [row["id"] for row in rows] == list(range(1000))  # each prompt once, in input order
    assert all(row["prompt"] == f"# {row['id']}: x = f(a, b) + 1" and row["nfe"] == 2 for row in rows)

    third = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert third.returncode == 0 and "wrote 0 generations" in third.stdout
    assert output.read_bytes() == after


def test_half_written_last_line_is_redone_and_a_foreign_output_refused(trained_run, tmp_path):
    prompts = write_prompts(tmp_path / "prompts.jsonl", 20)
    output = tmp_path / "out.jsonl"
    args = [f"ckpt={trained_run}", f"prompts_file={prompts}", f"output={output}", *QUICK]
    generate(*args)
    full = output.read_bytes()
    cut = full.index(b"\n", len(full) // 2) + 20  # ten-odd rows, then half a row
    output.write_bytes(full[:cut])
    assert generate(*args)["skipped"] == full[:cut].count(b"\n")
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [row["id"] for row in rows] == list(range(20))
    assert [r["completion"] for r in rows] == [json.loads(line)["completion"] for line in full.splitlines()]

    with pytest.raises(ConfigError, match="was written with ConfidenceSampler.*delete it or choose another"):
        generate(*args[:-3], "sampler.gen_length=4", "sampler.block_length=4", "sampler.steps=4")
    write_prompts(prompts, 5)
    prompts.write_text(prompts.read_text().replace("# 3:", "# three:"))
    with pytest.raises(ConfigError, match="line 4 does not match prompts_file"):
        generate(*args)


def test_memory_does_not_grow_with_the_number_of_prompts(trained_run, tmp_path):
    """Python allocations (tracemalloc) peak at the same level for 100 and 1,000 prompts: the
    file is streamed a window at a time. Holding every row (the old way) added ~1.7 MB here."""
    generate(f"ckpt={trained_run}", f"prompts_file={write_prompts(tmp_path / 'warm.jsonl', 10)}", *QUICK)
    peaks = {}
    for count in (100, 1000):
        prompts = write_prompts(tmp_path / f"p{count}.jsonl", count)
        tracemalloc.start()
        try:
            generate(f"ckpt={trained_run}", f"prompts_file={prompts}", *QUICK, "batch_size=64", "window=64")
            peaks[count] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    print(f"peak traced Python memory: {peaks}")
    assert peaks[1000] < peaks[100] + 500_000, peaks
