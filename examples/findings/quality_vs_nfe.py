"""Finding 3: quality vs NFE vs latency for every sampler policy, on sorting lists of digits.

Output positions depend on each other (the sorted list must hold the input's digits, each
once), so committing several at once (too few steps) or in a bad order (random) could hurt,
and a confident model should need far fewer forwards with threshold-style rules. Uses the
shared sort models (one per seed), every policy on the same 200 held-out lists in one process.

    python examples/findings/quality_vs_nfe.py        # FINDINGS_ROOT, FINDINGS_SEEDS to change
"""

from __future__ import annotations

from common import ROOT, SEEDS, effect, evaluate_grid, interval, tokens_per_s, write_result
from task_models import SORT_STEPS, sort_models

TASK = ["tasks=[sort]", "tasks.sort.limit=200"]  # gen length 17: the longest answer (15) + 2
FULL = 17
POLICIES = {  # label -> overrides; steps over the 17-token canvas
    **{f"confidence/steps={s}": ["sampler=confidence", f"sampler.steps={s}"] for s in (1, 2, 4, 8, FULL)},
    f"random/steps={FULL}": ["sampler=random", f"sampler.steps={FULL}"],
    f"margin/steps={FULL}": ["sampler=margin", f"sampler.steps={FULL}"],
    f"entropy/steps={FULL}": ["sampler=entropy", f"sampler.steps={FULL}"],
    **{f"threshold/{t}": ["sampler=threshold", f"sampler.threshold={t}"] for t in (0.5, 0.7, 0.9, 0.99)},
    "threshold/0.9+prefix": ["sampler=threshold", "sampler.threshold=0.9", "sampler/cache=prefix"],
    **{f"factor/{f}": ["sampler=factor", f"sampler.factor={f}"] for f in (0.5, 1.0, 2.0)},
    **{f"eb/{g}": ["sampler=eb", f"sampler.gamma={g}"] for g in (0.01, 0.1, 1.0)},
}


def main() -> None:
    runs = sort_models(ROOT / "shared")
    keys = ("exact_match", "nfe", "seconds_per_sample", "tokens_per_s", "positions_denoised")
    points, by_policy = evaluate_grid(runs, TASK, POLICIES, "sort", keys, "policy")

    def per_seed(label, key):
        return [m[key] for m in by_policy[label]]

    full, few = per_seed(f"confidence/steps={FULL}", "exact_match"), per_seed("confidence/steps=1", "exact_match")
    rand = per_seed(f"random/steps={FULL}", "exact_match")
    thr_acc = per_seed("threshold/0.9", "exact_match")
    ratio = [t / c for t, c in zip(per_seed("threshold/0.9", "nfe"), per_seed(f"confidence/steps={FULL}", "nfe"),
                                   strict=True)]
    effects = [
        effect(f"accuracy: {FULL} steps - 1 step (confidence)", [a - b for a, b in zip(full, few, strict=True)], ">0"),
        effect(f"accuracy: confidence order - random order ({FULL} steps)",
               [a - b for a, b in zip(full, rand, strict=True)], ">0"),
        effect(f"NFE ratio threshold(0.9) / confidence({FULL} steps), minus 1", [r - 1 for r in ratio], "<0"),
    ]
    summary = {label: {key: interval(per_seed(label, key)) for key in ("exact_match", "nfe", "seconds_per_sample")}
               for label in POLICIES}
    write_result("quality_vs_nfe", {
        "claim": "Fewer denoising steps and a worse decoding order cost accuracy; threshold decoding "
                 "needs far fewer forwards than LLaDA's fixed schedule at (nearly) equal accuracy",
        "source": "not reported by LLaDA / iLLaDA (NFE, latency); Fast-dLLM for threshold",
        "command": "python examples/findings/quality_vs_nfe.py",
        "preset": f"shared sort models (micro, {SORT_STEPS} steps x 128 lists), 200 test lists, seeds {SEEDS}",
        "tokens_per_s": tokens_per_s(*runs),
        "points": points,
        "summary": summary,
        "effects": effects,
        "notes": {"threshold_accuracy_minus_confidence": interval([t - c for t, c in zip(thr_acc, full, strict=True)]),
                  "nfe_ratio_threshold_over_confidence": interval(ratio)},
    })


if __name__ == "__main__":
    main()
