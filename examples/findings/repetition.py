"""Finding 6: repetitive loops in free generation, with and without no_repeat_ngram, and the cost.

iLLaDA notes repetitive loops in generations; LLaDA-style samplers offer an n-gram ban. Two sides,
LLaDA's confidence sampler on both, the repetition rate being the share of repeated 4-grams of
generated tokens:

- free text: the shared stdlib diffusion models (pretrained only) write the body of 50 held-out
  standard-library functions from their signature and docstring (tasks=[docstring_to_body], 64
  tokens), with and without no_repeat_ngram=3; quality is the edit similarity to the real body.
- sorted lists (the shared sort models), whose right answers repeat digits legitimately
  (no_repeat_ngram=2): what the ban costs in exact match.

    python examples/findings/repetition.py     # after diffusion_vs_ar.py (it trains the stdlib models)
"""

from __future__ import annotations

from common import ROOT, SEEDS, effect, evaluate_grid, interval, tokens_per_s, write_result
from stdlib_models import STEPS, stdlib_models
from task_models import SORT_LENGTH, SORT_STEPS, sort_models, sort_task

TEXT = ["tasks=[docstring_to_body]", "tasks.docstring_to_body.limit=50", "sampler=confidence"]
SORT = [*sort_task(), "sampler=confidence"]
NO_BAN = "no ban"
TEXT_BAN, SORT_BAN = "no_repeat_ngram=3", "no_repeat_ngram=2"


def main() -> None:
    text_runs, sort_runs = stdlib_models(ROOT / "shared")["diffusion"], sort_models(ROOT / "shared")
    def with_and_without(ban):
        return {NO_BAN: ["sampler.no_repeat_ngram=0"], ban: [f"sampler.{ban}"]}

    text_points, text = evaluate_grid(text_runs, TEXT, with_and_without(TEXT_BAN), "docstring_to_body",
                                      ("repetition_rate", "edit_similarity", "empty_rate", "nfe"), "setting")
    sort_points, sort = evaluate_grid(sort_runs, SORT, with_and_without(SORT_BAN), "sort",
                                      ("repetition_rate", "exact_match", "edit_similarity", "nfe"), "setting")

    def diff(results, ban, key):  # no ban - ban, per seed
        return [a[key] - b[key] for a, b in zip(results[NO_BAN], results[ban], strict=True)]

    def cells(results, keys):
        return {label: {k: interval([m[k] for m in ms]) for k in keys} for label, ms in results.items()}

    write_result("repetition", {
        "claim": "Free generations fall into repetitive loops; banning repeated n-grams removes them, "
                 "at a cost in quality where the right answer repeats itself",
        "source": "iLLaDA (repetitive loops noted)",
        "command": "python examples/findings/repetition.py",
        "preset": f"shared stdlib diffusion models ({STEPS} steps), 50 held-out function bodies (64 tokens); "
                  f"shared sort models (lists of 2-{SORT_LENGTH} digits, {SORT_STEPS} steps), 200 test lists; "
                  f"seeds {SEEDS}",
        "tokens_per_s": tokens_per_s(*text_runs, *sort_runs),
        "points": [{"side": "text", **p} for p in text_points] + [{"side": "sort", **p} for p in sort_points],
        "summary": {**{f"text, {label}": cell
                       for label, cell in cells(text, ("repetition_rate", "edit_similarity", "empty_rate")).items()},
                    **{f"sort, {label}": cell for label, cell in cells(sort, ("repetition_rate", "exact_match")).items()}},
        "effects": [
            effect(f"free text: repetition rate, no ban - {TEXT_BAN}", diff(text, TEXT_BAN, "repetition_rate"), ">0"),
            effect(f"free text: edit similarity, {TEXT_BAN} - no ban (the loops' cost)",
                   [-d for d in diff(text, TEXT_BAN, "edit_similarity")], ">0"),
            effect(f"sort: exact match, no ban - {SORT_BAN} (the ban's cost)", diff(sort, SORT_BAN, "exact_match"), ">0"),
        ],
        "notes": {
            "free text, no ban: share of whitespace-only bodies (empty_rate)": interval([m["empty_rate"] for m in text[NO_BAN]]),
            f"sort: repetition rate, no ban - {SORT_BAN}": interval(diff(sort, SORT_BAN, "repetition_rate")),
            f"sort: edit similarity, no ban - {SORT_BAN}": interval(diff(sort, SORT_BAN, "edit_similarity")),
        },
    })


if __name__ == "__main__":
    main()
