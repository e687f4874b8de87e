"""Finding 5: variable-length generation (iLLaDA) against a fixed-length canvas, on sorting.

Answers have 3 to 11 characters (2 to 6 digits). A fixed canvas denoises every position of the
longest answer (+2) for every list; variable-length generation appends 4-token blocks until
EOS. Same models (the shared sort models), same 200 test lists, one token per step in both.

    python examples/findings/variable_length.py
"""

from __future__ import annotations

from common import ROOT, SEEDS, effect, evaluate_grid, interval, tokens_per_s, write_result
from task_models import SORT_LENGTH, SORT_STEPS, sort_models, sort_task

TASK = sort_task()
FIXED, VARIABLE = "fixed (one block)", "variable (blocks of 4)"
POLICIES = {FIXED: ["sampler=confidence"], VARIABLE: ["sampler=variable_length", "sampler.block_length=4"]}


def main() -> None:
    runs = sort_models(ROOT / "shared")
    keys = ("exact_match", "nfe", "positions_denoised", "seconds_per_sample", "answer_tokens")
    points, results = evaluate_grid(runs, TASK, POLICIES, "sort", keys, "policy")

    def diff(key):
        fixed, variable = results[FIXED], results[VARIABLE]
        return [f[key] - v[key] for f, v in zip(fixed, variable, strict=True)]

    write_result("variable_length", {
        "claim": "Variable-length generation denoises fewer positions with fewer forwards than a "
                 "fixed-length canvas, at equal accuracy",
        "source": "iLLaDA (efficiency of variable-length generation; never measured there)",
        "command": "python examples/findings/variable_length.py",
        "preset": f"shared sort models (micro, lists of 2-{SORT_LENGTH} digits, {SORT_STEPS} steps x 128), 200 test lists, seeds {SEEDS}",
        "tokens_per_s": tokens_per_s(*runs),
        "points": points,
        "summary": {label: {k: interval([m[k] for m in ms]) for k in ("exact_match", "nfe", "positions_denoised",
                                                                        "seconds_per_sample")}
                    for label, ms in results.items()},
        "effects": [
            effect("positions denoised: fixed - variable", diff("positions_denoised"), ">0"),
            effect("NFE: fixed - variable", diff("nfe"), ">0"),
            effect("seconds per answer: fixed - variable", diff("seconds_per_sample"), ">0"),
            effect("exact match: fixed - variable (equal accuracy claimed)", diff("exact_match"), "=0"),
        ],
    })


if __name__ == "__main__":
    main()
