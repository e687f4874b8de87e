"""Finding 6: repetitive loops in free generation, with and without no_repeat_ngram, and the cost.

iLLaDA notes repetitive loops in generations; LLaDA-style samplers offer an n-gram ban. Here the
shared sort models write sorted lists (LLaDA's confidence sampler), whose right answers repeat
digits legitimately: the repetition rate (share of repeated 4-grams of tokens) with and without
no_repeat_ngram=2, and what the ban costs in exact match.

    python examples/findings/repetition.py
"""

from __future__ import annotations

from common import ROOT, SEEDS, effect, evaluate_grid, interval, tokens_per_s, write_result
from task_models import SORT_LENGTH, SORT_STEPS, sort_models, sort_task

TASK = [*sort_task(), "sampler=confidence"]
BAN = "no_repeat_ngram=2"
SETTINGS = {"no ban": ["sampler.no_repeat_ngram=0"], BAN: [f"sampler.{BAN}"]}


def main() -> None:
    runs = sort_models(ROOT / "shared")
    keys = ("repetition_rate", "exact_match", "edit_similarity", "nfe")
    points, results = evaluate_grid(runs, TASK, SETTINGS, "sort", keys, "setting")

    def diff(key):
        return [a[key] - b[key] for a, b in zip(results["no ban"], results[BAN], strict=True)]

    write_result("repetition", {
        "claim": "Banning repeated n-grams removes repetition, at a cost in quality where the right "
                 "answer repeats itself",
        "source": "iLLaDA (repetitive loops noted)",
        "command": "python examples/findings/repetition.py",
        "preset": f"shared sort models (micro, lists of 2-{SORT_LENGTH} digits, {SORT_STEPS} steps), 200 test lists, seeds {SEEDS}",
        "tokens_per_s": tokens_per_s(*runs),
        "points": points,
        "summary": {label: {k: interval([m[k] for m in ms]) for k in ("repetition_rate", "exact_match")}
                    for label, ms in results.items()},
        "effects": [effect("repetition rate: no ban - ban", diff("repetition_rate"), ">0"),
                    effect("exact match: no ban - ban (the ban's cost)", diff("exact_match"), ">0")],
        "notes": {"edit_similarity_no_ban_minus_ban": interval(diff("edit_similarity"))},
    })


if __name__ == "__main__":
    main()
