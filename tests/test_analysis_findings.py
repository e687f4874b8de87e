"""`python -m analysis findings`: docs/findings.md and one figure per finding from the records
examples/findings/*.py write (records built here in their format, small)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _cell(mean, low, high, n=3):
    return {"mean": mean, "low": low, "high": high, "n": n, "values": [mean] * n}


def _record(source: Path, finding: str, **fields) -> None:
    base = {"finding": finding, "claim": f"claim of {finding}", "source": "a paper", "command": f"python {finding}.py",
            "preset": "3 seeds", "tokens_per_s": 9000.0, "points": [{"seed": s} for s in range(3)]}
    (source / finding).mkdir(parents=True)
    (source / finding / "result.json").write_text(json.dumps({**base, **fields}))


def _findings(source: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analysis", "findings", "--source", str(source), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_the_table_lists_every_finding_in_order_with_intervals_and_verdicts(tmp_path):
    source, out = tmp_path / "runs", tmp_path / "docs"
    front = {"confidence/steps=1": {"exact_match": _cell(0.75, 0.62, 0.88), "nfe": _cell(1, 1, 1)},
             "confidence/steps=17": {"exact_match": _cell(0.74, 0.62, 0.87), "nfe": _cell(17, 17, 17)},
             "threshold/0.9": {"exact_match": _cell(0.77, 0.64, 0.9), "nfe": _cell(3.3, 3.0, 3.6)}}
    _record(source, "quality_vs_nfe", summary={"sort": front}, verdict="inconclusive", effects=[
        {"name": "NFE ratio - 1", "expect": "<0", **_cell(-0.805, -0.904, -0.706)},
        {"name": "one seed only", "expect": ">0", **_cell(0.2, float("nan"), float("nan"), n=1)}])
    epochs = [_cell(0.1 * e, 0.1 * e - 0.05, 0.1 * e + 0.05) for e in range(1, 4)]
    _record(source, "sft_epochs", test_questions=100, verdict="reproduced",
            summary={"sft_response": {"by_epoch": epochs, "second_by_epoch": epochs}},
            effects=[{"name": "epoch 3 - epoch 1", "expect": ">0", **_cell(0.2, 0.1, 0.3)}],
            notes={"edit similarity, epoch 3 - epoch 1": _cell(0.2, 0.1, 0.3)})

    done = _findings(source, out)

    assert done.returncode == 0, done.stderr[-2000:]
    table = (out / "findings.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| 1 |") or line.startswith("| 2 |")]
    # the paper's order (sft_epochs first), whatever order the folders sort in
    assert rows[0].startswith("| 1 | sft_epochs |") and rows[1].startswith("| 2 | quality_vs_nfe |")
    assert "epoch 3 - epoch 1 (expected >0): +0.200 [+0.100, +0.300] (n=3)" in rows[0] and "**reproduced**" in rows[0]
    assert "NFE ratio - 1 (expected <0): -0.805 [-0.904, -0.706] (n=3)" in rows[1]
    assert "one seed only (expected >0): +0.200 (n=1, no interval)" in rows[1] and "**inconclusive**" in rows[1]
    assert "- edit similarity, epoch 3 - epoch 1: +0.200 [+0.100, +0.300] (n=3)" in table
    for name in ("sft_epochs", "quality_vs_nfe"):
        figure = out / "figures" / f"findings_{name}.png"
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"figures/findings_{name}.png" in table


def test_an_empty_source_is_refused_with_the_command_that_fills_it(tmp_path):
    done = _findings(tmp_path, tmp_path / "docs")
    assert done.returncode == 2
    assert "run examples/findings.sh first" in done.stderr and not (tmp_path / "docs" / "findings.md").exists()


def test_the_sft_panel_draws_the_records_second_score_dashed_under_its_own_name():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis.findings import _main_panels

    epochs = [_cell(0.1 * e, 0.1 * e - 0.05, 0.1 * e + 0.05) for e in range(1, 4)]
    exact = [_cell(0.0, 0.0, 0.0), _cell(0.01, 0.0, 0.03), _cell(0.05, 0.0, 0.1)]
    result = {"points": [{"seed": s} for s in range(3)], "score": "edit similarity", "second_score": "exact match",
              "summary": {"sft_full": {"by_epoch": epochs, "second_by_epoch": exact}}}
    [draw] = _main_panels("sft_epochs", result)
    figure, ax = plt.subplots()
    draw(ax)
    solid, dashed = ax.get_lines()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["sft_full", "sft_full (exact match)"]
    assert solid.get_linestyle() == "-" and dashed.get_linestyle() == "--"
    assert list(dashed.get_ydata()) == [0.0, 0.01, 0.05] and solid.get_color() == dashed.get_color()
    assert ax.get_ylabel().startswith("edit similarity (solid), exact match (dashed)") and "n=3 seeds" in ax.get_ylabel()
    plt.close(figure)
