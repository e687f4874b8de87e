"""Finding 3: quality vs NFE vs latency for every sampler policy.

- ``sort`` (the sorted list is a function of the prompt): a model that knows each position's
  answer can commit several at once, where threshold rules should save most forwards; but
  committing everything in one step, or in a random order, writes digits before the ones they
  depend on.
- ``pick`` (``--pick``; any three different digits of the five listed are right): each digit alone
  is any listed digit, but one already written is ruled out for the others, so committing several
  digits in one step writes a digit twice. It runs only when asked: micro models need ~3,000
  steps to learn it (1,500 left it near 0), more than the 15-minute preset holds.

Uses the shared task models (one per seed per task), every policy on the same 200 held-out
questions in one process.

    python examples/findings/quality_vs_nfe.py          # sort (FINDINGS_ROOT, FINDINGS_SEEDS to change)
    python examples/findings/quality_vs_nfe.py --pick   # and pick
"""

from __future__ import annotations

import sys

from common import ROOT, SEEDS, effect, evaluate_grid, interval, tokens_per_s, write_result
from task_models import PICK_STEPS, SORT_CANVAS, SORT_LENGTH, SORT_STEPS, pick_models, sort_models, sort_task

KEYS = ("exact_match", "nfe", "seconds_per_sample", "tokens_per_s", "positions_denoised")


def policies(full: int, steps: tuple[int, ...], order_at: int) -> dict[str, list[str]]:
    """label -> overrides; ``full`` steps is one position per step over the canvas."""
    return {
        **{f"confidence/steps={s}": ["sampler=confidence", f"sampler.steps={s}"] for s in steps},
        **{f"random/steps={s}": ["sampler=random", f"sampler.steps={s}"] for s in (order_at, full)},
        f"margin/steps={full}": ["sampler=margin", f"sampler.steps={full}"],
        f"entropy/steps={full}": ["sampler=entropy", f"sampler.steps={full}"],
        **{f"threshold/{t}": ["sampler=threshold", f"sampler.threshold={t}"] for t in (0.5, 0.7, 0.9, 0.99)},
        "threshold/0.9+prefix": ["sampler=threshold", "sampler.threshold=0.9", "sampler/cache=prefix"],
        **{f"factor/{f}": ["sampler=factor", f"sampler.factor={f}"] for f in (0.5, 1.0, 2.0)},
        **{f"eb/{g}": ["sampler=eb", f"sampler.gamma={g}"] for g in (0.01, 0.1, 1.0)},
    }


# task -> (its models, its evaluate overrides, its generation canvas: the longest answer + 2, the
# step counts swept, where random order is compared: pick at 4 steps commits its 2 certain
# positions (EOS) in the first step, then one digit per step in confidence order)
TASKS = {"pick": (pick_models, ["tasks=[pick]", "tasks.pick.limit=200"], 5, (1, 2, 3, 4, 5), 4),
         "sort": (sort_models, sort_task(), SORT_CANVAS, (1, 2, 4, 8, SORT_CANVAS), 8)}


def main() -> None:
    with_pick = "--pick" in sys.argv[1:]
    tasks = {task: spec for task, spec in TASKS.items() if task == "sort" or with_pick}
    points, summary, by_task, runs = [], {}, {}, []
    for task, (models, task_overrides, full, steps, order_at) in tasks.items():
        task_runs = models(ROOT / "shared")
        runs += task_runs
        grid = policies(full, steps, order_at)
        task_points, by_policy = evaluate_grid(task_runs, task_overrides, grid, task, KEYS, "policy")
        points += [{"task": task, **point} for point in task_points]
        by_task[task] = (full, by_policy)
        summary[task] = {label: {key: interval([m[key] for m in by_policy[label]])
                                 for key in ("exact_match", "nfe", "seconds_per_sample")} for label in grid}

    def per_seed(task, label, key):
        return [m[key] for m in by_task[task][1][label]]

    def difference(task, a, b, key="exact_match"):
        return [x - y for x, y in zip(per_seed(task, a, key), per_seed(task, b, key), strict=True)]

    def nfe_ratio(task):
        full = by_task[task][0]
        return [t / c for t, c in zip(per_seed(task, "threshold/0.9", "nfe"),
                                      per_seed(task, f"confidence/steps={full}", "nfe"), strict=True)]

    effects = [
        effect(f"sort accuracy: {SORT_CANVAS} steps - 1 step (confidence)",
               difference("sort", f"confidence/steps={SORT_CANVAS}", "confidence/steps=1"), ">0"),
        effect("sort accuracy: confidence order - random order (8 steps)",
               difference("sort", "confidence/steps=8", "random/steps=8"), ">0"),
        effect(f"sort NFE ratio threshold(0.9) / confidence({SORT_CANVAS} steps), minus 1", [r - 1 for r in nfe_ratio("sort")],
               "<0"),
    ]
    notes = {
        f"sort accuracy: threshold(0.9) - confidence({SORT_CANVAS} steps)": interval(
            difference("sort", "threshold/0.9", f"confidence/steps={SORT_CANVAS}")),
        f"sort NFE ratio threshold(0.9) / confidence({SORT_CANVAS} steps)": interval(nfe_ratio("sort")),
    }
    if with_pick:
        effects += [
            effect("pick accuracy: 5 steps - 1 step (confidence)",
                   difference("pick", "confidence/steps=5", "confidence/steps=1"), ">0"),
            effect("pick accuracy: confidence order - random order (4 steps)",
                   difference("pick", "confidence/steps=4", "random/steps=4"), ">0"),
        ]
        notes |= {
            "pick NFE ratio threshold(0.9) / confidence(5 steps)": interval(nfe_ratio("pick")),
            "pick accuracy: threshold(0.9) - confidence(5 steps)": interval(
                difference("pick", "threshold/0.9", "confidence/steps=5")),
        }
    write_result("quality_vs_nfe", {
        "claim": "Too few denoising steps and a worse decoding order cost accuracy where answer tokens "
                 "depend on each other; threshold decoding needs far fewer forwards than LLaDA's fixed "
                 "schedule at (nearly) equal accuracy where the model is confident",
        "source": "not reported by LLaDA / iLLaDA (NFE, latency); Fast-dLLM for threshold",
        "command": "python examples/findings/quality_vs_nfe.py" + (" --pick" if with_pick else ""),
        "preset": f"shared task models (micro; sort lists of 2-{SORT_LENGTH} digits, {SORT_STEPS} steps x 128"
                  + (f", pick {PICK_STEPS} steps x 64" if with_pick else "") + "), "
                  f"200 test questions per task; seeds {SEEDS}",
        "tokens_per_s": tokens_per_s(*runs),
        "points": points,
        "summary": summary,
        "effects": effects,
        "notes": notes,
    })


if __name__ == "__main__":
    main()
