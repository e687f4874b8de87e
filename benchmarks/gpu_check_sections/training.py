"""a. Training throughput (the real DiffusionLM under Lightning against a bare loop, eager and
compiled) and c. the memory plan against the measured peak of the same training step.

Both loops train the same model (same seed, built on the device), the same fixed batch, the same
objective (no random truncation: fixed shapes), fused AdamW, gradient clipping and lr schedule, in
this process, one after the other; the memory check runs the bare loop's step at t = 1 (every
position masked), the case the plan plans for.
"""

from __future__ import annotations

import inspect
import time
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial

import lightning as L
import torch
from torch.utils.data import DataLoader
from train_throughput import RepeatedBatch, Stopwatch  # benchmarks/ is on sys.path (the script's folder)

from lit_illada.config.build import load_model_preset
from lit_illada.core.model import ModelConfig
from lit_illada.diffusion import AllPositions, DiffusionObjective, ElboWeighting, LinearSchedule
from lit_illada.planning.memory import GIB, count_params
from lit_illada.planning.plan import (
    Layout,
    Plan,
    executed_flops,
    flops_per_token,
    make_plan,
    precision_from_config,
)
from lit_illada.training.lr_schedules import WarmupHoldCosine
from lit_illada.training.module import DiffusionLM

from .common import MASK_ID, SMOKE_MODEL, Section, Settings, free_memory, ratio, sync

TARGET_RATIO, TARGET_MFU, STRETCH_MFU = 1.0, 0.45, 0.55
STEP_SEED = 2  # both loops seed this right before their first step: the same t and masks


@dataclass(frozen=True)
class TrainShape:
    model: ModelConfig
    batch: int
    seq_len: int
    precision: str  # Lightning's; the bare loop autocasts to bf16 when it says bf16
    warmup: int  # untimed steps (the compiled runs compile in the first)
    steps: int  # timed steps

    @property
    def tokens(self) -> int:
        return self.batch * self.seq_len


def train_shape(settings: Settings) -> TrainShape:
    """illada_1b at seq 2048 with the largest batch of 4, 2, 1 that the plan fits on this GPU."""
    if settings.smoke:
        return TrainShape(SMOKE_MODEL, batch=2, seq_len=64, precision="32-true", warmup=1, steps=2)
    model, seq_len, precision = load_model_preset("illada_1b"), 2048, "bf16-mixed"
    fitting = [b for b in (4, 2, 1) if memory_plan(settings, model, b, seq_len, precision).fits]
    return TrainShape(model, fitting[0] if fitting else 1, seq_len, precision, warmup=3, steps=10)


def memory_plan(settings: Settings, model: ModelConfig, batch: int, seq_len: int, precision: str) -> Plan:
    """``lit_illada.plan``'s plan of this single-device run (trainer=gpu, no sharding)."""
    layout = Layout(
        world=1,
        sharded=False,
        batch_size=batch,
        seq_len=seq_len,
        accumulate=1,
        precision=precision_from_config(precision, None),
        activation_checkpointing=0,
    )
    memory = torch.cuda.get_device_properties(settings.device).total_memory if settings.cuda else 0
    return make_plan(model, layout, memory, str(settings.device))


# ------------------------------------------------------------------------------ the two loops


def make_module(shape: TrainShape, settings: Settings, compile: bool) -> tuple[DiffusionLM, str]:
    """The real DiffusionLM on the device, seeded; with ``compile``, the framework's
    ``model.compile=true`` (``DiffusionLM(compile=True)``: each block compiled in configure_model).
    Returns the module and how its blocks are compiled."""
    objective = DiffusionObjective(
        LinearSchedule(stratified=True),
        ElboWeighting(),
        AllPositions(),
        mask_id=MASK_ID,
        truncate_fraction=0.0,
    )
    optimizer = partial(torch.optim.AdamW, lr=3e-4, weight_decay=0.1, betas=(0.9, 0.95), fused=True)
    how = "eager"
    options = {}
    if compile and "compile" in inspect.signature(DiffusionLM).parameters:
        options, how = {"compile": True}, "model.compile=true (DiffusionLM(compile=True))"
    torch.manual_seed(0)
    with torch.device(settings.device):
        module = DiffusionLM(shape.model, objective, optimizer, WarmupHoldCosine(warmup_steps=5), **options)
    if compile and not options:  # a version without model.compile: the same per-block compile by hand
        compile_blocks(module.net)
        how = "blocks compiled by hand (no model.compile in this version)"
    return module, how


def compile_blocks(net) -> None:
    """The framework's per-block compile (``model.compile=true``); the same loop where it is missing."""
    try:
        from lit_illada.training.compilation import compile_blocks as framework  # noqa: PLC0415
    except ImportError:
        for block in net.blocks:
            block.compile()
        return
    framework(net)


def bare_loop(
    module: DiffusionLM, ids: torch.Tensor, shape: TrainShape, device: torch.device, all_masked: bool = False
) -> dict:
    """The loop a careful person writes by hand, on the module's net, objective, optimizer and
    schedule. ``all_masked``: t = 1 for every row. Returns the timed steps' counts."""
    net, objective = module.net.train(), module.objective
    decay = [p for p in net.parameters() if p.ndim >= 2]
    no_decay = [p for p in net.parameters() if p.ndim < 2]
    optimizer = module.optimizer_factory([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}])
    total = shape.warmup + shape.steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: module.lr_schedule(step, total))
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16) if "bf16" in shape.precision else nullcontext()
    )
    batch = {"input_ids": ids}
    t = torch.ones(ids.shape[0], device=device) if all_masked else None
    torch.manual_seed(STEP_SEED)  # the same masks as the Lightning loop draws
    head, losses, started = 0, [], time.perf_counter()
    for step in range(total):
        if step == shape.warmup:
            sync(device)
            head, started = 0, time.perf_counter()
        with autocast:
            out = objective(net, batch, t=t)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        head += out.n_predicted
        losses.append(out.loss.detach())
    sync(device)
    seconds = time.perf_counter() - started
    return {
        "tokens": shape.tokens * shape.steps,
        "head_positions": head,
        "seconds": seconds,
        "losses": [float(x) for x in losses],
    }


class TimedSteps(Stopwatch):
    """train_throughput's Stopwatch, plus the module's token and LM-head counters over the timed
    steps and every step's loss (drawn from the same seed as the bare loop's)."""

    def on_train_start(self, trainer, module) -> None:
        torch.manual_seed(STEP_SEED)
        self.losses = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.losses.append(outputs["loss"].detach())

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        super().on_train_batch_start(trainer, module, batch, batch_idx)
        if batch_idx == self.warmup:
            self.counts = (module.train_tokens, module.train_head_positions)

    def on_train_end(self, trainer, module) -> None:
        super().on_train_end(trainer, module)
        self.tokens = module.train_tokens - self.counts[0]
        self.head_positions = module.train_head_positions - self.counts[1]


def lightning_loop(module: DiffusionLM, ids: torch.Tensor, shape: TrainShape, settings: Settings) -> dict:
    watch = TimedSteps(shape.warmup)
    total = shape.warmup + shape.steps
    trainer = L.Trainer(
        accelerator="gpu" if settings.cuda else "cpu",
        devices=1,
        precision=shape.precision,
        max_steps=total,
        gradient_clip_val=1.0,  # Lightning's own clipping (DiffusionLM clips itself for fused AdamW under bf16)
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[watch],
    )
    trainer.fit(module, train_dataloaders=DataLoader(RepeatedBatch(ids.cpu(), total), batch_size=None))
    losses = [float(x) for x in watch.losses]
    return {
        "tokens": watch.tokens,
        "head_positions": watch.head_positions,
        "seconds": watch.seconds,
        "losses": losses,
    }


def speed(counts: dict, shape: TrainShape, peak: float | None) -> dict:
    """tokens/s, and MFU under both FLOP counts as module.py logs them (train/mfu_model: the LM
    head at every position; train/mfu_executed: at the masked positions only)."""
    tokens, seconds = counts["tokens"], counts["seconds"]
    out = {
        "tokens_per_s": round(tokens / seconds, 1),
        "seconds_per_step": round(seconds / shape.steps, 4),
        "mfu_model": None,
        "mfu_executed": None,
        "losses": counts["losses"],
    }
    if peak:
        model = tokens * flops_per_token(shape.model, shape.seq_len)
        out["mfu_model"] = round(model / seconds / peak, 4)
        executed = executed_flops(shape.model, model, tokens, counts["head_positions"])
        out["mfu_executed"] = round(executed / seconds / peak, 4)
    return out


# ---------------------------------------------------------------------------------- sections


def training_throughput(settings: Settings, section: Section) -> None:
    shape = train_shape(settings)
    section.result.update(
        model=shape.model.name,
        params=count_params(shape.model),
        batch=shape.batch,
        seq_len=shape.seq_len,
        precision=shape.precision,
        optimizer="AdamW(fused=True)",
        clipping="clip_grad_norm_(1.0) before each step; on the Lightning side trainer gradient_clip_val=1.0",
        flops_per_token=flops_per_token(shape.model, shape.seq_len),
        peak_flops=settings.peak_flops,
        timed_steps=shape.steps,
    )
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(
        MASK_ID + 1, shape.model.vocab_size, (shape.batch, shape.seq_len), generator=generator
    )
    ids = ids.to(settings.device)
    for mode in ("eager", "compiled"):
        compiled = mode == "compiled"
        module, how = make_module(shape, settings, compile=False)
        if compiled:
            compile_blocks(module.net)
        bare = speed(bare_loop(module, ids, shape, settings.device), shape, settings.peak_flops)
        del module
        free_memory()
        module, how = make_module(shape, settings, compile=compiled)
        lightning = speed(lightning_loop(module, ids, shape, settings), shape, settings.peak_flops)
        del module
        free_memory()
        record = {
            "bare": bare,
            "lightning": lightning,
            "compile": how,
            "ratio_lightning_over_bare": round(ratio(lightning["tokens_per_s"], bare["tokens_per_s"]), 3),
            # the same weights, batch and masks: equal losses say both loops train the same way
            "loss_max_abs_diff": max(
                abs(a - b) for a, b in zip(bare["losses"], lightning["losses"], strict=True)
            ),
        }
        section.result[mode] = record
        section.show(
            f"{mode} tokens/s: bare | Lightning (ratio)",
            f"{bare['tokens_per_s']:,.0f} | {lightning['tokens_per_s']:,.0f} "
            f"({record['ratio_lightning_over_bare']:.3f}x)",
        )
        section.show(f"{mode} losses, bare vs Lightning: max |diff|", f"{record['loss_max_abs_diff']:.3g}")
        section.show(
            f"{mode} MFU model | executed FLOPs: bare; Lightning",
            f"{_pct(bare['mfu_model'])} | {_pct(bare['mfu_executed'])}; "
            f"{_pct(lightning['mfu_model'])} | {_pct(lightning['mfu_executed'])}",
        )
        ratio_value = record["ratio_lightning_over_bare"]
        section.target(
            f"Lightning / bare loop, {mode}", ratio_value, f">= {TARGET_RATIO}", ratio_value >= TARGET_RATIO
        )
    mfu = section.result["compiled"]["lightning"]["mfu_model"]
    section.target(
        "MFU (model FLOPs), Lightning compiled",
        mfu,
        f">= {TARGET_MFU} (stretch {STRETCH_MFU})",
        None if mfu is None else mfu >= TARGET_MFU,
    )


def memory_plan_check(settings: Settings, section: Section) -> None:
    shape = train_shape(settings)
    plan = memory_plan(settings, shape.model, shape.batch, shape.seq_len, shape.precision)
    memory = plan.memory
    section.result.update(
        run="section a's eager bare-loop step at t = 1 (every position masked: the case the plan plans for)",
        model=shape.model.name,
        batch=shape.batch,
        seq_len=shape.seq_len,
        precision=shape.precision,
        plan_bytes={
            "params": memory.params,
            "grads": memory.grads,
            "optimizer": memory.optimizer,
            "activations": memory.activations,
            "transient": memory.transient,
            "total": memory.total,
        },
    )
    baseline = 0
    if settings.cuda:  # what earlier sections left allocated (e.g. held by compile caches) is not this run's
        baseline = torch.cuda.memory_allocated(settings.device)
        torch.cuda.reset_peak_memory_stats(settings.device)
    module, _ = make_module(shape, settings, compile=False)
    ids = torch.randint(
        MASK_ID + 1, shape.model.vocab_size, (shape.batch, shape.seq_len), device=settings.device
    )
    # Two steps: the second holds the AdamW moments that the first creates, and the run's peak.
    two_steps = TrainShape(shape.model, shape.batch, shape.seq_len, shape.precision, warmup=0, steps=2)
    section.result["losses"] = bare_loop(module, ids, two_steps, settings.device, all_masked=True)["losses"]
    section.show(
        "planned total",
        f"{_size(memory.total)} (params {_size(memory.params)}, optimizer "
        f"{_size(memory.optimizer)}, activations {_size(memory.activations)}, "
        f"transient {_size(memory.transient)})",
    )
    if not settings.cuda:
        why = "no CUDA device: torch.cuda.max_memory_allocated has nothing to measure (plan and step ran)"
        section.result.update(measured_peak_bytes=None, measured_why_null=why)
        section.show("measured peak", "null: " + why)
        section.target("measured peak / plan", None, "within 15% (0.85 - 1.15)", None)
        return
    peak = torch.cuda.max_memory_allocated(settings.device) - baseline
    static = (
        torch.cuda.memory_allocated(settings.device) - baseline
    )  # weights and AdamW state; gradients freed
    section.result.update(
        measured_peak_bytes=peak,
        baseline_bytes=baseline,
        measured_static_bytes=static,
        planned_static_bytes=memory.params + memory.optimizer,
        measured_reserved_bytes=torch.cuda.max_memory_reserved(settings.device),
    )
    share = peak / memory.total
    section.show(
        "measured peak (max_memory_allocated)",
        f"{_size(peak)} = {share:.3f} x plan; after the step "
        f"{_size(static)} (planned params + optimizer {_size(memory.params + memory.optimizer)})",
    )
    section.target("measured peak / plan", share, "within 15% (0.85 - 1.15)", abs(share - 1) <= 0.15)


def _size(n: int) -> str:
    return f"{n / GIB:.2f} GiB" if n >= GIB / 10 else f"{n / 2**20:.2f} MiB"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"
