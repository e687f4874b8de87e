"""`python -m lit_illada.generate` on a checkpoint that training wrote."""

import json
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir

from lit_illada.builder import CONF_DIR
from lit_illada.checkpoint import load_checkpoint
from lit_illada.config_checks import ConfigError
from lit_illada.generate import run

pytestmark = pytest.mark.slow


def generate(*overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return run(compose(config_name="generate", overrides=list(overrides)))


def test_checkpoint_round_trips_the_training_config(trained_run):
    loaded = load_checkpoint(trained_run)
    assert loaded.path.name == "best.ckpt"
    assert loaded.net.config.d_model == 64 and not loaded.net.training
    assert loaded.tokenizer.mask_id == 259 and loaded.objective.causal is False


@pytest.mark.parametrize("sampler", ["confidence", "threshold", "variable_length"])
def test_single_prompt_generates_with_stats(trained_run, sampler, capsys):
    [row] = generate(f"ckpt={trained_run}", 'prompt="def f(x):"', f"sampler={sampler}",
                     "sampler.gen_length=16", "sampler.block_length=8", "sampler.steps=16")
    assert row["prompt"] == "def f(x):"
    assert row["nfe"] >= 1 and row["seconds"] > 0 and row["tokens_per_s"] > 0
    out = capsys.readouterr()
    assert out.out.startswith("def f(x):") and "NFE" in out.err


def test_prompts_file_writes_jsonl_in_input_order(trained_run, tmp_path):
    prompts = ["import os", "class A:", "import re", "x = 1"]
    source = tmp_path / "prompts.jsonl"
    source.write_text("".join(json.dumps({"id": i, "prompt": p}) + "\n" for i, p in enumerate(prompts)))
    generate(f"ckpt={trained_run}", f"prompts_file={source}", "batch_size=2",
             "sampler.gen_length=8", "sampler.block_length=8", "sampler.steps=8", "sampler.cache=prefix")
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
         "sampler=threshold", "sampler.gen_length=8", "sampler.block_length=8", "sampler.steps=8"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("import") and "NFE" in proc.stderr
