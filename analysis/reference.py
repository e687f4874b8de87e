"""The paper's reference numbers, beside what our runs measured.

Numbers copied from the "Paper tables (iLLaDA, LLaDA, Qwen2.5)" section of the project's
REFERENCE.md (shared/REFERENCE.md), in percent. Our embedded tasks (mc_nextline,
docstring_to_body, infill) are not these benchmarks, so most cells read "not measured";
a run evaluated on a benchmark of the same name (``gsm8k/accuracy`` ...) fills its cell.
"""

from __future__ import annotations

import re

import pandas as pd

MODELS = ("iLLaDA", "LLaDA", "Qwen2.5")
# (setting, benchmark) -> scores of MODELS, percent.
PAPER = {
    ("Base", "MMLU"): (74.8, 65.9, 71.9),
    ("Base", "BBH"): (71.3, 49.7, 63.9),
    ("Base", "ARC-C"): (60.8, 45.9, 51.5),
    ("Base", "HellaSwag"): (76.6, 70.5, 79.0),
    ("Base", "GSM8K"): (81.9, 70.3, 78.9),
    ("Base", "MATH"): (38.4, 31.4, 41.1),
    ("Base", "HumanEval"): (50.0, 35.4, 56.7),
    ("Base", "MBPP"): (57.8, 40.0, 63.6),
    ("Instruct", "MMLU"): (71.6, 65.5, 76.6),
    ("Instruct", "MMLU-Pro"): (52.3, 37.0, 56.3),
    ("Instruct", "GSM8K"): (89.0, 77.5, 91.6),
    ("Instruct", "MATH"): (56.7, 42.2, 75.5),
    ("Instruct", "HumanEval"): (65.9, 49.4, 84.8),
    ("Instruct", "MBPP"): (58.0, 41.0, 79.2),
}
# Task names (lower case, letters and digits only) that count as the benchmark.
ALIASES = {
    "MMLU": ("mmlu",),
    "MMLU-Pro": ("mmlupro",),
    "BBH": ("bbh",),
    "ARC-C": ("arcc", "arcchallenge"),
    "HellaSwag": ("hellaswag",),
    "GSM8K": ("gsm8k",),
    "MATH": ("math", "minervamath", "hendrycksmath"),
    "HumanEval": ("humaneval",),
    "MBPP": ("mbpp",),
}
SCORE_METRICS = ("accuracy", "acc", "exact_match", "pass@1")  # first present wins
STAGE_OF_SETTING = {"Base": "pretrain", "Instruct": "sft"}
NOT_MEASURED = "not measured"


def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def measured_column(frame: pd.DataFrame, benchmark: str) -> str | None:
    """The ``<task>/<metric>`` column that measures ``benchmark``, if the runs have one."""
    for metric in SCORE_METRICS:
        for column in frame.columns:
            task, _, name = str(column).partition("/")
            if name == metric and _normal(task) in ALIASES[benchmark] and frame[column].notna().any():
                return column
    return None


def reference_rows(frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (setting, benchmark): the paper's scores, then our best run's (percent)."""
    frame = frame if frame is not None else pd.DataFrame()
    rows = []
    for (setting, benchmark), scores in PAPER.items():
        row = {"setting": setting, "benchmark": benchmark, **dict(zip(MODELS, scores, strict=True))}
        row["measured"], row["measured by"] = NOT_MEASURED, ""
        column = measured_column(frame, benchmark)
        if column is not None:
            # Base numbers against pretrained runs, Instruct against SFT runs (when stages are known).
            rows_of_stage = frame
            if "stage" in frame and frame["stage"].notna().any():
                rows_of_stage = frame[frame["stage"] == STAGE_OF_SETTING[setting]]
            scored = rows_of_stage.dropna(subset=[column])
            if not scored.empty:
                best = scored.loc[scored[column].idxmax()]
                row["measured"] = round(100 * float(best[column]), 1)
                row["measured by"] = f"{best['run']} ({column})"
        rows.append(row)
    return pd.DataFrame.from_records(rows)
