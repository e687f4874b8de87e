"""f. Sampler speed on a trained model: a micro model taught the synthetic ``sort`` task by the real
command (``experiment=task_from_scratch data=sort``, the findings' sort recipe, at most 2 minutes on
a GPU; a few steps on the CPU smoke), then NFE, tok/s and accuracy on the held-out test split for
confidence, threshold, factor and EB, without and with the prefix cache, through
``lit_illada.evaluate``'s own ``evaluate`` (the command's code path, the model loaded per setting).
"""

from __future__ import annotations

from hydra import compose, initialize_config_dir

from lit_illada.config.paths import CONF_DIR
from lit_illada.evaluate import evaluate

from .common import Section, Settings, ratio, run_command, train_command

# examples/findings/task_models.py's SORT recipe (1000 steps x 128 rows, lr 3e-3)
SORT = [
    "experiment=task_from_scratch",
    "data=sort",
    "data.batch_size=128",
    "optimizer.lr=3e-3",
    "trainer.max_steps=1000",
    "trainer.val_check_interval=500",
]
SMOKE_SORT = [
    "experiment=task_from_scratch",
    "data=sort",
    "data.batch_size=16",
    "trainer.max_steps=4",
    "trainer.val_check_interval=4",
    "data.val_batches=1",
]
TRAIN_SECONDS = 120  # the cap on the GPU
POLICIES = {
    "confidence": ["sampler=confidence"],
    "threshold": ["sampler=threshold"],
    "factor": ["sampler=factor"],
    "eb": ["sampler=eb"],
}
CACHES = {"": [], "+prefix": ["sampler/cache=prefix"]}
KEYS = ("exact_match", "nfe", "tokens_per_s", "seconds_per_sample", "positions_denoised", "n")
TARGET_SPEEDUP, TARGET_POINTS = 8.0, 2.0


def trained_sampler_speed(settings: Settings, section: Section) -> None:
    if settings.smoke:
        training = [*SMOKE_SORT, "trainer=cpu"]
    else:  # leave a minute for the evaluations
        seconds = int(max(10, min(TRAIN_SECONDS, section.left() - 60)))
        training = [*SORT, "trainer=gpu", f"trainer.max_time=00:00:{seconds // 60:02d}:{seconds % 60:02d}"]
    run = settings.workdir / "runs" / "sort"
    run_command(train_command(settings, "sort", *training), settings.workdir / "sort.log", section.left())
    section.result.update(training=training, run=str(run))
    limit = ["tasks.sort.limit=16"] if settings.smoke else []
    device = f"device={settings.device}"

    def measure(label: str, overrides: list[str]) -> dict:
        output = settings.workdir / f"eval-{label.replace('+', '_')}.json"
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(
                "evaluate",
                overrides=[f"ckpt={run}", "tasks=[sort]", f"output={output}", device, *limit, *overrides],
                return_hydra_config=True,
            )
        metrics = evaluate(cfg)["tasks"]["sort"]
        return {key: metrics[key] for key in KEYS}

    if settings.cuda:  # first CUDA calls (kernels, allocator) kept out of the timed settings
        measure("warmup", ["tasks.sort.limit=16", *POLICIES["threshold"], *CACHES["+prefix"]])
    policies = section.result.setdefault("policies", {})
    for policy, chosen in POLICIES.items():
        for cache, cached in CACHES.items():
            policies[policy + cache] = measure(policy + cache, [*chosen, *cached])
    for label, m in policies.items():
        section.show(
            label, f"accuracy {m['exact_match']:.3f}, NFE {m['nfe']:.1f}, {m['tokens_per_s']:,.0f} tok/s"
        )
    base, fast = policies["confidence"], policies["threshold+prefix"]
    speedup = ratio(fast["tokens_per_s"], base["tokens_per_s"])
    points = 100 * (fast["exact_match"] - base["exact_match"])
    section.result.update(threshold_prefix_speedup=speedup, threshold_prefix_accuracy_points=points)
    section.target(
        "threshold + prefix cache tok/s / confidence",
        speedup,
        f">= {TARGET_SPEEDUP}",
        speedup is not None and speedup >= TARGET_SPEEDUP,
    )
    section.target(
        "threshold + prefix cache accuracy - confidence (points)",
        points,
        f"within +-{TARGET_POINTS}",
        abs(points) <= TARGET_POINTS,
    )
