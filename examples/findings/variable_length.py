"""Finding 5: variable-length generation (iLLaDA) against a fixed-length canvas, on addition.

Answers have 1 to 4 digits. A fixed canvas denoises every position of the longest answer (+EOS
room) for every question; variable-length generation appends 2-token blocks until EOS. Same
models, same 200 test questions, one token per step in both.

    python examples/findings/variable_length.py
"""

from __future__ import annotations

from common import ROOT, SEEDS, Evaluator, effect, interval, tokens_per_s, train, write_result

STEPS = 1500
TASK = ["tasks=[addition]", "tasks.addition.limit=200"]
POLICIES = {
    "fixed (one block)": ["sampler=confidence"],
    "variable (blocks of 2)": ["sampler=variable_length", "sampler.block_length=2"],
}


def addition_models(root) -> list:
    return [train(f"addition-s{seed}", "experiment=task_from_scratch", "data=addition", f"seed={seed}",
                  f"trainer.max_steps={STEPS}", root=root) for seed in SEEDS]


def main() -> None:
    runs = addition_models(ROOT / "shared")
    points, results = [], {label: [] for label in POLICIES}
    for seed, run in zip(SEEDS, runs, strict=True):
        evaluator = Evaluator(run)
        for label, overrides in POLICIES.items():
            metrics = evaluator.run(*TASK, *overrides)["addition"]
            results[label].append(metrics)
            points.append({"seed": seed, "policy": label, **{k: metrics[k] for k in (
                "exact_match", "nfe", "positions_denoised", "seconds_per_sample", "answer_tokens")}})
            print(f"seed {seed} {label:24s} acc {metrics['exact_match']:.3f} NFE {metrics['nfe']:.2f} "
                  f"positions {metrics['positions_denoised']:.2f} {metrics['seconds_per_sample'] * 1000:.2f} ms", flush=True)

    def diff(key):
        fixed, variable = results["fixed (one block)"], results["variable (blocks of 2)"]
        return [f[key] - v[key] for f, v in zip(fixed, variable, strict=True)]

    write_result("variable_length", {
        "claim": "Variable-length generation denoises fewer positions with fewer forwards than a "
                 "fixed-length canvas, at equal accuracy",
        "source": "iLLaDA (efficiency of variable-length generation; never measured there)",
        "command": "python examples/findings/variable_length.py",
        "preset": f"micro model, {STEPS} steps x 64 examples per seed, 200 test questions, seeds {SEEDS}",
        "tokens_per_s": tokens_per_s(*runs),
        "points": points,
        "summary": {label: {k: interval([m[k] for m in ms]) for k in ("exact_match", "nfe", "positions_denoised",
                                                                        "seconds_per_sample")}
                    for label, ms in results.items()},
        "effects": [
            effect("positions denoised: fixed - variable", diff("positions_denoised"), ">0"),
            effect("NFE: fixed - variable", diff("nfe"), ">0"),
            effect("seconds per answer: fixed - variable", diff("seconds_per_sample"), ">0"),
        ],
        "notes": {"accuracy_fixed_minus_variable": interval(diff("exact_match"))},
    })


if __name__ == "__main__":
    main()
