"""The plan of a run: bytes per device against the memory it has, FLOPs per token, and the time for a
token budget. Nothing is allocated: every count is analytic from the model config.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from hydra.utils import instantiate
from lightning.fabric.utilities.throughput import get_available_flops
from omegaconf import DictConfig

from lit_illada.config.parallel import DTYPES, FSDPConfig, world_size
from lit_illada.core.model import ModelConfig
from lit_illada.planning.memory import (
    Precision,
    TrainingMemory,
    count_params,
    fmt_bytes,
    training_memory,
)

HEADROOM = 0.9  # keep 10% of device memory for the CUDA context, NCCL buffers and fragmentation
PEAK_BF16_FLOPS = 989e12  # H100 / H200 SXM dense bf16, per GPU: the plan's default target


# The share of positions a pretraining step runs the LM head at: the mean mask rate E[p(t)] of
# the default linear schedule p(t) = t, t ~ U(0, 1). SFT masks only answers, so its share is lower.
PRETRAIN_HEAD_SHARE = 0.5


def flops_per_token(cfg: ModelConfig, seq_len: int) -> float:
    """Model FLOPs per training token, the count MFU divides by: every matmul of forward (2) and
    backward (4) per weight, 6·(params without the input embedding, the LM head included), plus
    bidirectional attention, 12·layers·heads·head_dim·seq (QKᵀ and AV, no causal discount).
    PaLM's 6N + 12·L·H·Q·T, as torchtitan and nanoGPT count: the LM head at every position."""
    attention = cfg.n_layers * cfg.n_heads * cfg.head_dim * seq_len
    return 6.0 * (count_params(cfg) - _input_embedding(cfg)) + 12.0 * attention


def head_flops_per_position(cfg: ModelConfig) -> float:
    """FLOPs of the LM head (d -> vocab) at one position, forward and backward: 6·vocab·d."""
    return 6.0 * cfg.vocab_size * cfg.d_model


def executed_flops(cfg: ModelConfig, model_flops: float, tokens: float, head_positions: float) -> float:
    """FLOPs actually run for ``tokens`` tokens of ``model_flops`` when the LM head runs at
    ``head_positions`` of them only (``logits_at``: the masked positions of diffusion, the
    targets of AR)."""
    return model_flops - (tokens - head_positions) * head_flops_per_position(cfg)


def _input_embedding(cfg: ModelConfig) -> int:
    """The embedding table as a lookup costs no FLOPs; tied, the same weights are the head and count."""
    return 0 if cfg.tie_embeddings else cfg.vocab_size * cfg.d_model


# Dense bf16 tensor-core peak per GPU, matched on the lower-cased CUDA device name: NVIDIA's
# datasheet figures "with sparsity", halved. Checked first because Lightning's table (used for
# every other GPU) matches no plain "NVIDIA H200" and gives H100 NVL and H200 their sparse figures.
# An H100 name that says none of nvl/pcie/hbm2e/hbm3 is left to Lightning (unknown: no MFU).
DENSE_BF16_PEAKS: tuple[tuple[tuple[str, ...], float], ...] = (
    (("h200", "nvl"), 835e12),  # H200 NVL
    (("h200",), 989e12),  # H200 SXM ("NVIDIA H200"), GH200
    (("h100", "nvl"), 835e12),  # H100 NVL
    (("h100", "pcie"), 756e12),  # H100 PCIe
    (("h100", "hbm2e"), 756e12),  # the PCIe card's memory (Lightning's rule)
    (("h100", "hbm3"), 989e12),  # H100 SXM ("NVIDIA H100 80GB HBM3")
    (("a100",), 312e12),  # A100 SXM4 and PCIe, 40 and 80 GB
)


def peak_flops(accelerator: str) -> float | None:
    """Dense bf16 peak of this node's GPU for MFU, from its CUDA device name: ``DENSE_BF16_PEAKS``,
    else Lightning's table. None on CPU, on a MIG slice (a share of the chip) and on a GPU neither
    table knows: then no train/mfu_* is logged unless ``peak_tflops=`` gives the peak."""
    if accelerator not in ("gpu", "cuda", "auto") or not torch.cuda.is_available():
        return None
    device = torch.device("cuda", torch.cuda.current_device())
    name = torch.cuda.get_device_name(device).lower()
    if "mig" in name.split():
        return None
    for parts, flops in DENSE_BF16_PEAKS:
        if all(part in name for part in parts):
            return flops
    lightning = get_available_flops(device, torch.bfloat16)  # warns when it does not know the GPU
    return float(lightning) if lightning else None


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
        """len(config.parallel.checkpointed_blocks(n_layers, k)), not listed: any depth plans at once."""
        every = self.activation_checkpointing
        return 0 if every == 0 else len(range(0, n_layers, every))

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

    def executed_flops_per_token(self, head_share: float = PRETRAIN_HEAD_SHARE) -> float:
        return executed_flops(self.model, self.flops_per_token(), 1.0, head_share)

    def seconds(self, tokens: float, mfu: float, peak_flops: float = PEAK_BF16_FLOPS) -> float:
        return tokens * self.flops_per_token() / (self.layout.world * peak_flops * mfu)

    def render(
        self, token_budget: float | None = None, mfu: float = 0.4, peak_flops: float = PEAK_BF16_FLOPS
    ) -> str:
        lines = [self._header(), *self._memory_lines()]
        flops = self.flops_per_token()
        lines += [
            f"model FLOPs: {flops:.3e}/token (6·params without the input embedding + "
            "12·layers·heads·head_dim·seq; the LM head at every position, as MFU counts it)",
            f"executed FLOPs: {self.executed_flops_per_token():.3e}/token (the LM head only at masked "
            f"positions, {PRETRAIN_HEAD_SHARE:.0%} of them in pretraining)",
        ]
        if token_budget:
            per_gpu = peak_flops * mfu / flops
            lines.append(
                f"time: {token_budget:.3g} tokens at {mfu:.0%} MFU (of model FLOPs) of "
                f"{peak_flops / 1e12:.0f} TFLOP/s x "
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


