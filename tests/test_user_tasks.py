"""Evaluating on synthetic tasks and on a user's JSONL files through the real command, and
training a task from scratch with the recipe (the mechanics in a few steps, and 20 facts
learned in 400)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir

from lit_illada.config.choices import record_choices
from lit_illada.config.paths import CONF_DIR
from lit_illada.evaluate import evaluate
from tests.runs import FAST, compose_train, train

pytestmark = pytest.mark.slow


def run_eval(*overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="evaluate", overrides=list(overrides), return_hydra_config=True)
    return evaluate(record_choices(cfg))


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_jsonl_generation_with_and_without_suffix_and_choice(trained_run, tmp_path):
    gen = write_jsonl(tmp_path / "rev.jsonl", [{"prompt": "abc:", "answer": "cba"}, {"prompt": "wxyz:", "answer": "zyxw!"}])
    infill = write_jsonl(tmp_path / "gap.jsonl", [{"prompt": "def f(", "answer": "x", "suffix": "):"}])
    mc = write_jsonl(tmp_path / "pick.jsonl", [{"context": "1+1=", "choices": ["02", "03", "04"], "label": 0}] * 3)
    out = tmp_path / "results.json"
    results = run_eval(f"ckpt={trained_run}", "tasks=[]", f"task_files=[{gen},{infill},{mc}]", "scoring.mc_num=2",
                       f"output={out}")
    tasks = results["tasks"]
    assert set(tasks) == {"rev", "gap", "pick"}
    # The generation length follows the answers: the longest (5 bytes) + a margin of 2, one step each.
    assert tasks["rev"]["n"] == 2 and tasks["rev"]["positions_denoised"] == 7 and tasks["rev"]["nfe"] == 7
    assert 0 <= tasks["rev"]["exact_match_low"] <= tasks["rev"]["exact_match"] <= tasks["rev"]["exact_match_high"] <= 1
    assert tasks["gap"]["positions_denoised"] == 1  # an infill's gap is its answer's length
    assert tasks["pick"]["n"] == 3 and tasks["pick"]["chance"] == pytest.approx(1 / 3)
    assert tasks["pick"]["forwards_per_question"] == 3 * 2  # 3 two-token choices x mc_num 2 sequences
    assert json.loads(out.read_text())["config"]["task_files"] == [str(gen), str(infill), str(mc)]


def test_an_explicit_gen_length_wins_over_the_answers(trained_run, tmp_path):
    gen = write_jsonl(tmp_path / "short.jsonl", [{"prompt": "a", "answer": "b"}])
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("evaluate", overrides=[f"ckpt={trained_run}", "tasks=[]", f"task_files=[{gen}]",
                                             "sampler.gen_length=16", "sampler.block_length=8", "sampler.steps=16",
                                             f"output={tmp_path / 'r.json'}"], return_hydra_config=True)
    results = evaluate(record_choices(cfg))
    assert results["tasks"]["short"]["positions_denoised"] == 16


def test_the_command_line_takes_a_jsonl_path_in_tasks_and_refuses_a_bad_record(trained_run, tmp_path):
    good = write_jsonl(tmp_path / "mine.jsonl", [{"prompt": "x", "answer": "y"}])
    result = subprocess.run([sys.executable, "-m", "lit_illada.evaluate", f"ckpt={trained_run}",
                             f"tasks=[{good},infill]", "limit=2", f"output={tmp_path / 'r.json'}"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert set(json.loads((tmp_path / "r.json").read_text())["tasks"]) == {"mine", "infill"}
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "x", "answer": "y"}, {"context": "c", "choices": ["a"], "label": 0}])
    result = subprocess.run([sys.executable, "-m", "lit_illada.evaluate", f"ckpt={trained_run}", f"tasks=[{bad}]"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "line 2: 'choices' must be a list of at least 2" in result.stderr


def test_an_autoregressive_model_answers_left_to_right_and_reports_a_suffix_task_not_applicable(
    tmp_path, cache_dir
):
    train(tmp_path, cache_dir, "objective=autoregressive", "trainer.max_steps=4", "trainer.val_check_interval=4", name="ar")
    gen = write_jsonl(tmp_path / "fwd.jsonl", [{"prompt": "ab", "answer": "cd"}])
    infill = write_jsonl(tmp_path / "mid.jsonl", [{"prompt": "a", "answer": "b", "suffix": "c"}])
    results = run_eval(f"ckpt={tmp_path / 'ar'}", "tasks=[]", f"task_files=[{gen},{infill}]",
                       f"output={tmp_path / 'r.json'}")
    assert results["tasks"]["fwd"]["nfe"] == 4  # one forward per token: 2 + margin 2
    assert results["tasks"]["mid"]["skipped"].startswith("not applicable")


def test_synthetic_tasks_evaluate_in_both_forms(trained_run, tmp_path):
    results = run_eval(f"ckpt={trained_run}", "tasks=[addition,addition_mc,facts_reverse]", "limit=4", "add_bos=true",
                       "scoring.mc_num=2", f"output={tmp_path / 'r.json'}")
    tasks = results["tasks"]
    assert tasks["addition"]["n"] == 4 and tasks["addition_mc"]["chance"] == 0.25
    assert tasks["facts_reverse"]["positions_denoised"] == 3  # the 3-letter key between "" and "=value"
    assert list(results["config"]["tasks"]) == ["addition", "addition_mc", "facts_reverse"]


def test_task_from_scratch_sizes_rows_from_the_data_and_says_it_starts_from_scratch(tmp_path, capsys):
    data = write_jsonl(tmp_path / "train.jsonl", [{"prompt": f"reverse {w}:", "response": w[::-1]}
                                                  for w in ("abc", "hello", "xyzzy", "qwerty") * 10])
    cfg = compose_train("experiment=task_from_scratch", f"data.source.path={data}", f"runs_root={tmp_path}",
                        "name=scratch", "trainer.max_steps=3", "trainer.val_check_interval=3", "data.batch_size=8",
                        *[o for o in FAST if o.startswith("trainer.enable")])
    from lit_illada.train import run  # noqa: PLC0415

    summary = run(cfg)
    recorded = (tmp_path / "scratch" / "config.yaml").read_text()
    # BOS + "reverse qwerty:" (15 bytes) + "ytrewq" (6) + EOS = 23, rounded up to a multiple of 8.
    assert summary["step"] == 3 and "seq_len: 24" in recorded
    assert "SFT from random initialization" in capsys.readouterr().out


def test_task_from_scratch_memorizes_facts_and_answers_on_a_shorter_canvas_than_its_rows(tmp_path):
    # 20 facts, 400 steps (~35 s on 2 cores). The rows are 16 tokens (BOS key= value EOS x7); the
    # evaluation canvas is the answer + 2. With every row padded to 16 the model answered on a
    # 5-token canvas at exact match 0.06; the recipe trims the padding (objective.trim_padding_fraction).
    facts = ["data.source.num_facts=20", "data.source.val_size=4", "data.source.test_size=16"]
    cfg = compose_train("experiment=task_from_scratch", "data=facts", *facts, "data.batch_size=16",
                        "trainer.max_steps=400", "trainer.val_check_interval=200", f"runs_root={tmp_path}",
                        "name=facts", *[o for o in FAST if o.startswith("trainer.enable")])
    from lit_illada.train import run  # noqa: PLC0415

    run(cfg)
    same_facts = [o.replace("data.source.", "tasks.facts.task.") for o in facts]
    results = run_eval(f"ckpt={tmp_path / 'facts'}", "tasks=[facts]", *same_facts, "tasks.facts.limit=16",
                       f"output={tmp_path / 'r.json'}")["tasks"]["facts"]
    assert results["positions_denoised"] == 5 and results["n"] == 16
    assert results["exact_match"] >= 0.9
