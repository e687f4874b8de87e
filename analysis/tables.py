"""Markdown tables from run records (summary.json + results.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

# (column label, source, key): summary.json metrics, then results.json task metrics.
PARITY_COLUMNS = [
    ("val NLL (nats/token)", "summary", "val/nll"),
    ("train tok/s", "summary", "train/tokens_per_s"),
    ("mc_nextline acc", "mc_nextline", "accuracy"),
    ("docstring_to_body parse", "docstring_to_body", "parse_rate"),
    ("docstring_to_body edit sim", "docstring_to_body", "edit_similarity"),
    ("docstring_to_body NFE", "docstring_to_body", "nfe"),
    ("docstring_to_body s/sample", "docstring_to_body", "seconds_per_sample"),
    ("infill token acc", "infill", "token_accuracy"),
]


def run_row(run_dir: str | Path) -> dict:
    """One run's summary and evaluation results, flattened."""
    run_dir = Path(run_dir)
    summary_path, results_path = run_dir / "summary.json", run_dir / "results.json"
    if not summary_path.exists():
        raise FileNotFoundError(f"{summary_path} not found: is {run_dir} a finished training run?")
    row: dict = {"run": run_dir.name, "summary": json.loads(summary_path.read_text())}
    results = json.loads(results_path.read_text()) if results_path.exists() else {"tasks": {}}
    row["objective"] = results.get("objective", "?")
    row.update(results["tasks"])
    return row


def parity_table(run_dirs: list[str | Path]) -> pd.DataFrame:
    """Diffusion vs AR side by side: one row per run, the columns of PARITY_COLUMNS."""
    records = []
    for row in map(run_row, run_dirs):
        record = {"run": row["run"], "objective": row["objective"]}
        for label, source, key in PARITY_COLUMNS:
            value = row.get(source, {}).get(key) if isinstance(row.get(source), dict) else None
            record[label] = value if value is not None else float("nan")
        records.append(record)
    return pd.DataFrame.from_records(records)


def to_markdown(frame: pd.DataFrame, floatfmt: str = ".3f") -> str:
    """A markdown table without the optional `tabulate` dependency."""
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    lines = [header, rule]
    for _, row in frame.iterrows():
        cells = [
            format(v, floatfmt)
            if isinstance(v, float) and v == v
            else ("n/a" if isinstance(v, float) else str(v))
            for v in row
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
