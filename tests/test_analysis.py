"""The analysis package reads real run records; the parity table shows what they hold."""

import json

import pytest

from analysis.tables import parity_table, to_markdown
from tests.runs import train
from tests.test_evaluate import run_eval

pytestmark = pytest.mark.slow


def test_parity_table_matches_the_run_records(trained_run, tmp_path, cache_dir):
    steps = ["trainer.max_steps=4", "trainer.val_check_interval=4"]
    train(tmp_path, cache_dir, "objective=autoregressive", *steps, name="ar")
    runs = [trained_run, tmp_path / "ar"]
    for run in runs:
        run_eval(f"ckpt={run}", "tasks=[mc_nextline]", "limit=2", f"output={run / 'results.json'}")
    table = parity_table(runs)
    assert table["objective"].tolist() == ["diffusion", "autoregressive"]
    for run, (_, row) in zip(runs, table.iterrows(), strict=True):
        summary = json.loads((run / "summary.json").read_text())
        results = json.loads((run / "results.json").read_text())
        assert row["val NLL (nats/token)"] == summary["val/nll"]
        assert row["mc_nextline acc"] == results["tasks"]["mc_nextline"]["accuracy"]
    markdown = to_markdown(table)
    assert markdown.count("\n") == 4 and "n/a" in markdown  # no infill run: shown, not invented
