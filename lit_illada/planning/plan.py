"""The plan of a run: bytes per device against the memory it has, FLOPs per token, and the time for a
token budget. Nothing is allocated: every count is analytic from the model config.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from hydra.utils import instantiate
from lightning.fabric.utilities.throughput import get_available_flops
from omegaconf import DictConfig

from lit_illada.config.parallel import DTYPES, FSDPConfig, checkpointed_blocks, world_size
from lit_illada.core.model import ModelConfig
from lit_illada.planning.memory import (
    Precision,
    TrainingMemory,
    count_params,
    fmt_bytes,
    training_memory,
)

HEADROOM = 0.9  # keep 10% of device memory for the CUDA context, NCCL buffers and fragmentation
PEAK_BF16_FLOPS = 989e12  # H100 / H200 SXM dense bf16, per GPU


def flops_per_token(cfg: ModelConfig, seq_len: int) -> float:
    """Training FLOPs per token: 6·(non-embedding params) + 6·vocab·d + 6·layers·heads·head_dim·seq."""
    embedding = cfg.vocab_size * cfg.d_model
    non_embedding = count_params(cfg) - embedding * (1 if cfg.tie_embeddings else 2)
    attention = cfg.n_layers * cfg.n_heads * cfg.head_dim * seq_len
    return 6.0 * (non_embedding + embedding + attention)


def peak_flops(accelerator: str) -> float | None:
    """Dense bf16 peak of this node's GPU for MFU: 989 TFLOP/s on H100/H200, Lightning's table
    for other GPUs; None on CPU, where no peak is meaningful."""
    if accelerator not in ("gpu", "cuda", "auto") or not torch.cuda.is_available():
        return None
    device = torch.device("cuda", torch.cuda.current_device())
    name = torch.cuda.get_device_name(device)
    if "H100" in name or "H200" in name:
        return PEAK_BF16_FLOPS
    return get_available_flops(device, torch.bfloat16)


@dataclass(frozen=True)
class Layout:
    """How a run is spread and batched: everything the memory model needs besides the model."""

    world: int
    sharded: bool
    batch_size: int  # per device
    seq_len: int
    accumulate: int
    precision: Precision
    activation_checkpointing: int  # 0 off, k: every k-th block (FSDPConfig)

    def checkpointed_blocks(self, n_layers: int) -> int:
        return len(checkpointed_blocks(n_layers, self.activation_checkpointing))

    @property
    def tokens_per_step(self) -> int:
        return self.world * self.batch_size * self.seq_len * self.accumulate


def layout_from_config(cfg: DictConfig) -> Layout:
    parallel: FSDPConfig | None = instantiate(cfg.parallel) if cfg.get("parallel") else None
    return Layout(
        world=world_size(cfg.trainer),
        sharded=parallel is not None,
        batch_size=cfg.data.batch_size,
        seq_len=cfg.data.seq_len,
        accumulate=cfg.trainer.get("accumulate_grad_batches", 1),
        precision=precision_from_config(str(cfg.trainer.get("precision", "32-true")), parallel),
        activation_checkpointing=parallel.activation_checkpointing if parallel else 0,
    )


def precision_from_config(trainer_precision: str, parallel: FSDPConfig | None) -> Precision:
    """Lightning's ``trainer.precision`` and, with FSDP, its MixedPrecisionPolicy dtypes."""
    half = "16" in trainer_precision
    master = 2 if half and "mixed" not in trainer_precision else 4
    if parallel is not None:
        compute, reduce = (DTYPES[d].itemsize for d in (parallel.param_dtype, parallel.reduce_dtype))
        return Precision(master=master, compute=2 if half else compute, reduce=reduce)
    autocast = "mixed" in trainer_precision
    return Precision(master=master, compute=2 if half else 4, reduce=master, autocast=autocast)


@dataclass(frozen=True)
class Plan:
    model: ModelConfig
    layout: Layout
    memory: TrainingMemory
    device_memory: int  # bytes per device
    device_name: str

    @property
    def params(self) -> int:
        return count_params(self.model)

    @property
    def fits(self) -> bool:
        return self.memory.total <= HEADROOM * self.device_memory

    def flops_per_token(self) -> float:
        return flops_per_token(self.model, self.layout.seq_len)

    def seconds(self, tokens: float, mfu: float, peak_flops: float = PEAK_BF16_FLOPS) -> float:
        return tokens * self.flops_per_token() / (self.layout.world * peak_flops * mfu)

    def render(
        self, token_budget: float | None = None, mfu: float = 0.4, peak_flops: float = PEAK_BF16_FLOPS
    ) -> str:
        lines = [self._header(), *self._memory_lines()]
        flops = self.flops_per_token()
        lines.append(
            f"compute: {flops:.3e} FLOPs/token (6·non-embedding + 6·vocab·d + 6·layers·heads·head_dim·seq)"
        )
        if token_budget:
            per_gpu = peak_flops * mfu / flops
            lines.append(
                f"time: {token_budget:.3g} tokens at {mfu:.0%} MFU of {peak_flops / 1e12:.0f} TFLOP/s x "
                f"{self.layout.world} devices ({per_gpu:,.0f} tokens/s/device) = "
                f"{_duration(self.seconds(token_budget, mfu, peak_flops))}"
            )
        return "\n".join(lines)

    def _header(self) -> str:
        lay, m = self.layout, self.model
        how = f"FSDP2 over {lay.world} devices"
        if not lay.sharded:
            how = f"{lay.world} device(s), each holding the whole model"
        ac = lay.checkpointed_blocks(m.n_layers)
        return (
            f"model={m.name}: {self.params:,} parameters\n"
            f"layout: {how}; micro-batch {lay.batch_size} x {lay.seq_len} tokens, accumulation "
            f"{lay.accumulate} -> {lay.tokens_per_step:,} tokens per optimizer step\n"
            f"bytes per element: master {lay.precision.master}, compute {lay.precision.compute}, "
            f"reduce {lay.precision.reduce}; activation checkpointing on {ac} of {m.n_layers} blocks"
        )

    def _memory_lines(self) -> list[str]:
        mem = self.memory
        rows = [("params", mem.params), ("grads", mem.grads), ("optimizer", mem.optimizer),
                ("activations", mem.activations), ("transient", mem.transient), ("total", mem.total)]
        lines = ["memory per device:"] + [f"  {name:<12}{fmt_bytes(value):>12}" for name, value in rows]
        verdict = "fits" if self.fits else "does NOT fit"
        usable = fmt_bytes(int(HEADROOM * self.device_memory))
        lines.append(f"  {verdict}: {self.device_name}, {HEADROOM:.0%} usable = {usable}")
        return lines


def make_plan(model: ModelConfig, layout: Layout, device_memory: int, device_name: str) -> Plan:
    memory = training_memory(
        model,
        batch_size=layout.batch_size,
        seq_len=layout.seq_len,
        world=layout.world,
        sharded=layout.sharded,
        precision=layout.precision,
        checkpointed_blocks=layout.checkpointed_blocks(model.n_layers),
    )
    return Plan(model, layout, memory, device_memory, device_name)


def find_fit(plan: Plan) -> tuple[Plan, list[str]] | None:
    """The first smaller-footprint variant that fits, with the overrides that select it.

    Tries checkpointing every 2nd block, then every block, then halves the micro-batch
    (accumulating more to keep the tokens per step), on the same devices. FSDP only: without
    sharding, weights and optimizer state dominate and neither knob helps enough.
    """
    if not plan.layout.sharded:
        return None
    batch = plan.layout.batch_size
    while batch >= 1:
        for ac in dict.fromkeys((plan.layout.activation_checkpointing, 2, 1)):  # least recompute first
            accumulate = plan.layout.accumulate * plan.layout.batch_size // batch
            layout = replace(
                plan.layout, batch_size=batch, activation_checkpointing=ac, accumulate=accumulate
            )
            candidate = make_plan(plan.model, layout, plan.device_memory, plan.device_name)
            if candidate.fits:
                return candidate, _overrides(plan.layout, layout)
        batch //= 2
    return None


def _overrides(old: Layout, new: Layout) -> list[str]:
    changes = [
        ("parallel.activation_checkpointing", old.activation_checkpointing, new.activation_checkpointing),
        ("data.batch_size", old.batch_size, new.batch_size),
        ("trainer.accumulate_grad_batches", old.accumulate, new.accumulate),
    ]
    return [f"{key}={b}" for key, a, b in changes if a != b]


def _duration(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:,.1f} days"
    return f"{seconds / 3600:,.1f} hours" if seconds >= 3600 else f"{seconds / 60:,.1f} minutes"


