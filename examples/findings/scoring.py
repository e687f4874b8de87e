"""Finding 2: likelihood vs confidence scoring of multiple-choice questions, and what each costs.

iLLaDA reports confidence-based scoring beating LLaDA's Monte Carlo likelihood by +1.3 / +0.6 /
+2.3 points. Here: the shared sort models on the multiple-choice form of sort (the sorted list
among lists with one digit off), likelihood with mc_num 1, 4 and 16 against confidence;
accuracy with intervals over seeds and sequence forwards per question.

    python examples/findings/scoring.py
"""

from __future__ import annotations

from common import ROOT, SEEDS, effect, evaluate_grid, interval, tokens_per_s, write_result
from task_models import SORT_LENGTH, sort_models, sort_task

TASK = sort_task("sort_mc")
SCORERS = {
    **{f"likelihood/mc_num={n}": ["scoring=likelihood", f"scoring.mc_num={n}"] for n in (1, 4, 16)},
    "confidence": ["scoring=confidence"],
}


def main() -> None:
    runs = sort_models(ROOT / "shared")
    keys = ("accuracy", "accuracy_low", "accuracy_high", "forwards_per_question", "n")
    points, results = evaluate_grid(runs, TASK, SCORERS, "sort_mc", keys, "scorer")

    def acc(label):
        return [m["accuracy"] for m in results[label]]

    write_result("scoring", {
        "claim": "Confidence-based scoring beats LLaDA's Monte Carlo likelihood on multiple choice",
        "source": "iLLaDA (+1.3 / +0.6 / +2.3 points on its benchmarks)",
        "command": "python examples/findings/scoring.py",
        "preset": f"shared sort models (lists of 2-{SORT_LENGTH} digits), sort_mc (4 choices), 200 questions, seeds {SEEDS}",
        "tokens_per_s": tokens_per_s(*runs),
        "points": points,
        "summary": {label: {"accuracy": interval(acc(label)),
                            "forwards_per_question": interval([m["forwards_per_question"] for m in ms])}
                    for label, ms in results.items()},
        "effects": [
            effect("accuracy: confidence - likelihood(mc_num=16)",
                   [c - lk for c, lk in zip(acc("confidence"), acc("likelihood/mc_num=16"), strict=True)], ">0"),
            effect("accuracy: likelihood mc_num 16 - mc_num 1",
                   [a - b for a, b in zip(acc("likelihood/mc_num=16"), acc("likelihood/mc_num=1"), strict=True)], ">0"),
        ],
    })


if __name__ == "__main__":
    main()
