"""b. Sharded training through the real command, ``python -m lit_illada.train trainer=fsdp``:
20 steps with finite losses, a DCP checkpoint, and a resume whose losses equal an uninterrupted
run's.

Each run is its own process (clean torch.distributed start-up). On GPU: bf16 FSDP2 over every
visible GPU (world size 1 on a one-GPU machine: the same code path, nothing to shard across); on
the CPU smoke: 2 gloo ranks, a tiny model, float32. The losses come from the runs' CSV logs.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from lit_illada.checkpoints.files import sharded_checkpoint

from .common import Section, Settings, finish_all, free_port, start_command, train_command

STEPS, RESUME_AT = 20, 10
TINY = [
    "model.n_layers=2",
    "model.d_model=64",
    "model.n_heads=4",
    "model.n_kv_heads=2",
    "model.ffn_hidden=128",
    "data.seq_len=64",
]
# Tolerance on the resumed losses: float32 on one CPU thread per rank is bit-exact (as
# tests/test_resume.py asserts); bf16 on GPU keeps a few kernels without a deterministic variant
# (trainer.deterministic=warn makes the others deterministic), so it is relative and small: a
# broken resume (optimizer state, data position, RNG) moves the diffusion loss by far more.
EXACT_ABS, GPU_REL = 1e-6, 1e-3


def run_overrides(settings: Settings) -> tuple[list[str], int]:
    """The runs' shared overrides and their world size."""
    common = ["trainer.log_every_n_steps=1", f"trainer.val_check_interval={RESUME_AT}", "data.val_batches=2"]
    if settings.smoke:
        world = 2
        return [
            "trainer=fsdp",
            "trainer.accelerator=cpu",
            f"trainer.devices={world}",
            "parallel.param_dtype=float32",
            "threads=1",
            "data.batch_size=4",
            *TINY,
            *common,
        ], world
    world = settings.gpus
    return [
        "trainer=fsdp",
        f"trainer.devices={world}",
        "parallel.param_dtype=bfloat16",
        "model=small",
        "data.seq_len=1024",
        "data.batch_size=8",
        "trainer.deterministic=warn",
        *common,
    ], world


def sharded_training(settings: Settings, section: Section) -> None:
    overrides, world = run_overrides(settings)
    section.result.update(
        world_size=world,
        steps=STEPS,
        resume_at=RESUME_AT,
        overrides=overrides,
        backend="gloo (CPU)" if settings.smoke else "nccl",
    )
    if world == 1:
        section.result["note"] = (
            "one GPU visible: FSDP2 over world size 1 (the same code path, no sharding across)"
        )
    section.show(
        "layout",
        f"trainer=fsdp over {world} {'CPU ranks' if settings.smoke else 'GPU(s)'}, "
        f"{'float32' if settings.smoke else 'bf16'} compute",
    )

    def start(name: str, steps: int):
        args = train_command(settings, name, *overrides, f"trainer.max_steps={steps}")
        log = settings.workdir / f"{name}-{steps}.log"
        return start_command(args, log, env={"MASTER_PORT": str(free_port())}), log

    # The uninterrupted run and the first half of the resumed one run side by side.
    finish_all([start("resumed", RESUME_AT), start("whole", STEPS)], section.left)
    finish_all([start("resumed", STEPS)], section.left)  # the same name: resumes from step RESUME_AT

    runs = settings.workdir / "runs"
    record_runs(section, runs / "whole", runs / "resumed")
    compare_losses(section, settings.smoke)


def record_runs(section: Section, whole: Path, resumed: Path) -> None:
    """Both runs' losses, where the resume started and the DCP checkpoint it wrote."""
    section.result["losses"] = {"uninterrupted": train_losses(whole), "resumed": train_losses(resumed)}
    starts = [json.loads(line) for line in (resumed / "starts.jsonl").read_text().splitlines()]
    section.result["resumed_from"] = starts[-1].get("resumed_from")
    last = (resumed / "checkpoints" / "last.ckpt").resolve()
    checkpoint = {
        "path": last.name,
        "dcp": sharded_checkpoint(last),
        "distcp_files": len(list(last.glob("*.distcp"))),
    }
    section.result["checkpoint"] = checkpoint
    summary = json.loads((whole / "summary.json").read_text())
    section.result["uninterrupted_summary"] = {
        k: v for k, v in summary.items() if k.startswith(("train/", "val/"))
    }
    section.show(
        "DCP checkpoint",
        f"{last.name}: {checkpoint['distcp_files']} .distcp file(s), dcp={checkpoint['dcp']}; "
        f"resumed from {Path(str(section.result['resumed_from'])).name}",
    )


def compare_losses(section: Section, smoke: bool) -> None:
    uninterrupted, resumed = section.result["losses"]["uninterrupted"], section.result["losses"]["resumed"]

    def max_diff(steps: range) -> float | None:
        diffs = [abs(resumed[s] - uninterrupted[s]) for s in steps if s in resumed and s in uninterrupted]
        return max(diffs) if len(diffs) == len(steps) else None  # None: a step is missing

    finite = sorted(uninterrupted) == list(range(STEPS)) and all(map(math.isfinite, uninterrupted.values()))
    after, before = max_diff(range(RESUME_AT, STEPS)), max_diff(range(RESUME_AT))
    scale = max(map(abs, uninterrupted.values()), default=1.0)
    tolerance = EXACT_ABS if smoke else GPU_REL * scale
    section.result.update(
        losses_finite=finite,
        resumed_complete=after is not None,
        max_abs_diff_after_resume=after,
        max_abs_diff_before_resume=before,  # two fresh runs: the run-to-run floor
        bit_identical_after_resume=after == 0.0,
        tolerance=tolerance,
    )
    section.show(
        f"losses, {STEPS} steps",
        f"finite: {finite}; first {_loss(uninterrupted, 0)}, last {_loss(uninterrupted, STEPS - 1)}",
    )
    section.show(
        "resumed vs uninterrupted, max |diff|",
        f"{_number(after)} after step {RESUME_AT} (two fresh runs before it: {_number(before)})",
    )
    section.target(f"{STEPS} finite losses", float(finite), "all finite", finite)
    section.target(
        "resumed losses equal the uninterrupted run's",
        after,
        f"max |diff| <= {tolerance:.2g}",
        after is not None and after <= tolerance,
    )


def train_losses(run: Path) -> dict[int, float]:
    """``train/loss`` per step from the run's metrics.csv (the last row of a step wins: the file is
    appended across resumes)."""
    losses = {}
    with (run / "metrics.csv").open() as rows:
        for row in csv.DictReader(rows):
            if row.get("train/loss"):
                losses[int(row["step"])] = float(row["train/loss"])
    return losses


def _loss(losses: dict[int, float], step: int) -> str:
    return f"{losses[step]:.4f}" if step in losses else "missing"


def _number(value: float | None) -> str:
    return "a step is missing" if value is None else f"{value:.3g}"
