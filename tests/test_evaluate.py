"""`python -m lit_illada.evaluate` on the embedded tasks, for diffusion and AR checkpoints."""

import json
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir

from lit_illada.config.paths import CONF_DIR
from lit_illada.evaluate import evaluate
from lit_illada.evaluation.tasks.docstring_to_body import body_parses
from tests.runs import train

pytestmark = pytest.mark.slow

SMALL = ["limit=4", "scoring.batch_size=8", "sampler.gen_length=16", "sampler.block_length=8", "sampler.steps=16"]


def run_eval(*overrides):
    scoring = [] if "scoring=confidence" in overrides else ["scoring.mc_num=8"]
    small = [o for o in SMALL if not (o.startswith("sampler.steps=") and "sampler=threshold" in overrides)]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return evaluate(compose(config_name="evaluate", overrides=[*small, *scoring, *overrides]))


def test_diffusion_checkpoint_on_every_task_writes_results_json(trained_run):
    results = run_eval(f"ckpt={trained_run}")
    assert results == json.loads((trained_run / "results.json").read_text())
    tasks = results["tasks"]
    assert tasks["mc_nextline"]["n"] == 4 and 0 <= tasks["mc_nextline"]["accuracy"] <= 1
    body = tasks["docstring_to_body"]
    assert body["n"] == 4 and body["nfe"] == 16 and body["seconds_per_sample"] > 0
    assert 0 <= body["parse_rate"] <= 1 and 0 <= body["edit_similarity"] <= 1
    assert tasks["infill"]["n"] == 4 and 0 <= tasks["infill"]["token_accuracy"] <= 1
    assert "LikelihoodScorer" in results["scorer"] and results["objective"] == "diffusion"


def test_confidence_scoring_and_threshold_sampler_are_selectable(trained_run, tmp_path):
    out = tmp_path / "conf.json"
    results = run_eval(f"ckpt={trained_run}", "scoring=confidence", "sampler=threshold",
                       "tasks=[mc_nextline,docstring_to_body]", f"output={out}")
    assert "ConfidenceScorer" in results["scorer"] and "ThresholdSampler" in results["sampler"]
    assert json.loads(out.read_text())["tasks"].keys() == {"mc_nextline", "docstring_to_body"}


def test_autoregressive_checkpoint_is_scored_by_exact_likelihood(tmp_path, cache_dir):
    train(tmp_path, cache_dir, "objective=autoregressive", "trainer.max_steps=4", "trainer.val_check_interval=4", name="ar")
    results = run_eval(f"ckpt={tmp_path / 'ar'}")
    assert results["objective"] == "autoregressive" and "AutoregressiveScorer" in results["scorer"]
    assert "skipped" in results["tasks"]["infill"]
    assert results["tasks"]["docstring_to_body"]["nfe"] == 16  # one forward per token
    # An explicit diffusion scorer cannot apply to a left-to-right model: refused, not swapped.
    refused = subprocess.run(
        [sys.executable, "-m", "lit_illada.evaluate", f"ckpt={tmp_path / 'ar'}", "scoring=confidence", "tasks=mc_nextline"],
        capture_output=True, text=True, timeout=600,
    )
    assert refused.returncode == 2
    assert "scoring=confidence: does not apply to" in refused.stderr and "autoregressive checkpoint" in refused.stderr


def test_unknown_task_lists_the_choices(trained_run):
    result = subprocess.run(
        [sys.executable, "-m", "lit_illada.evaluate", f"ckpt={trained_run}", "tasks=[mc_nextline,gsm8k]"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: tasks=gsm8k: no such option; choose one of")
    assert "mc_nextline" in result.stderr


def test_a_single_task_name_needs_no_brackets_and_task_options_override(trained_run, tmp_path):
    out = tmp_path / "results.json"
    results = run_eval(f"ckpt={trained_run}", "tasks=infill", "tasks.infill.span=4", "limit=2", f"output={out}")
    assert list(results["tasks"]) == ["infill"]
    assert results["config"]["tasks"]["infill"]["span"] == 4 and results["tasks"]["infill"]["span"] == 4


def test_body_parse_requires_a_statement_beyond_the_docstring():
    prompt = 'def f(x):\n    """Add one."""\n'
    assert body_parses(prompt, "    return x + 1\n")
    assert body_parses(prompt, "    y = x + 1\n    return y +")  # cut mid-line: dropped
    assert not body_parses(prompt, "\n\n      \n")
    assert not body_parses(prompt, "    return (")
