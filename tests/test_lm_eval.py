"""lm-eval-harness itself runs a local task on a real checkpoint through the adapter."""

import pytest

lm_eval = pytest.importorskip("lm_eval", reason="the eval extra (lm-eval) is not installed")

import lit_illada.evaluation.lm_eval_adapter  # noqa: E402,F401 - registers the lit_illada model
from lit_illada.evaluation.export import export_mc_nextline  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("scoring", ["likelihood", "confidence"])
def test_lm_eval_runs_the_local_nextline_task(trained_run, tmp_path, monkeypatch, scoring):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")  # the task's data is a local JSONL file
    export_mc_nextline(tmp_path, limit=6)
    from lm_eval.tasks import TaskManager

    extra = ",scoring.mc_num=4,scoring.batch_size=4" if scoring == "likelihood" else ""
    results = lm_eval.simple_evaluate(
        model="lit_illada",
        model_args=f"ckpt={trained_run},scoring={scoring}{extra}",
        tasks=["lit_mc_nextline"],
        task_manager=TaskManager(include_path=str(tmp_path)),
        limit=6,
    )
    accuracy = results["results"]["lit_mc_nextline"]["acc,none"]
    assert 0.0 <= accuracy <= 1.0
    assert results["n-samples"]["lit_mc_nextline"]["effective"] == 6


def test_unknown_model_arg_is_named(trained_run):
    from lit_illada.evaluation.lm_eval_adapter import LitIlladaLM

    with pytest.raises(ValueError, match="unknown key 'temprature'"):
        LitIlladaLM(ckpt=str(trained_run), temprature=0.5)
