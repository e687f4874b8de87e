"""Parameter counts and per-device training memory, computed without allocating weights.

Counts build the model on the meta device, so an 8B preset is counted in milliseconds. The
memory model follows what training holds on one device:

- params, grads, optimizer: float32 master weights, their gradients and AdamW's two moments
  (plus its per-tensor ``step``); with FSDP each rank holds its shard (rank 0's, the largest);
- activations: tensors saved for the backward pass (derived from ``model.py``'s ops and
  checked against a direct count in the tests);
- transient: the largest short-lived buffers: FSDP's gathered weights and unsharded
  gradients, bf16 weight copies under autocast, the logits' float32 copy, a recomputed block.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields

import torch

from lit_illada.core.model import ModelConfig, Transformer

GIB = 1024**3


def count_params(cfg: ModelConfig) -> int:
    with torch.device("meta"):
        return Transformer(cfg).num_params()


def _param_shapes(cfg: ModelConfig) -> dict[str, list[torch.Size]]:
    """Parameter shapes per FSDP group: ``root`` (embedding, head, final norm) and each block."""
    with torch.device("meta"):
        net = Transformer(cfg)
    groups = {f"block{i}": [p.shape for p in block.parameters()] for i, block in enumerate(net.blocks)}
    block_params = {id(p) for p in net.blocks.parameters()}
    groups["root"] = [p.shape for p in net.parameters() if id(p) not in block_params]
    return groups


def shard_numel(shape: torch.Size, world: int) -> int:
    """Elements rank 0 holds when FSDP2 shards ``shape`` on dim 0 (``torch.chunk`` sizes)."""
    return math.ceil(shape[0] / world) * math.prod(shape[1:])


@dataclass(frozen=True)
class Precision:
    """Bytes per element of each copy of the weights."""

    master: int = 4  # the weights the optimizer updates, their gradients and AdamW moments
    compute: int = 4  # weights and activations in forward/backward
    reduce: int = 4  # gradients while they are reduced across ranks (FSDP)
    autocast: bool = False  # bf16-mixed keeps a compute copy of every weight during forward


@dataclass(frozen=True)
class TrainingMemory:
    """Bytes per device."""

    params: int
    grads: int
    optimizer: int
    activations: int
    transient: int

    @property
    def total(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self))


def block_activation_bytes(cfg: ModelConfig, compute: int) -> int:
    """Bytes saved for backward per token by one block (two RMSNorms, attention, SwiGLU).

    Each norm keeps its input, a float32 copy and its output; attention keeps q, k, v and its
    output (a fused kernel: no L x L scores); the MLP keeps gate, up, SiLU(gate) and their product.
    """
    d, kv, f = cfg.d_model, cfg.n_kv_heads * cfg.head_dim, cfg.ffn_hidden
    return compute * (6 * d + 2 * kv + 4 * f) + 8 * d


def training_memory(
    cfg: ModelConfig,
    *,
    batch_size: int,
    seq_len: int,
    world: int = 1,
    sharded: bool = False,
    precision: Precision = Precision(),
    checkpointed_blocks: int = 0,
) -> TrainingMemory:
    """Per-device bytes to train ``cfg`` on micro-batches of ``batch_size`` x ``seq_len``.

    ``sharded``: FSDP over ``world`` ranks (else every device holds everything, as in DDP).
    ``checkpointed_blocks``: blocks whose activations are recomputed in the backward pass.
    """
    groups = _param_shapes(cfg)
    shards = world if sharded else 1
    local = sum(shard_numel(s, shards) for shapes in groups.values() for s in shapes)
    n_tensors = sum(len(shapes) for shapes in groups.values())
    return TrainingMemory(
        params=local * precision.master,
        grads=local * precision.master,
        optimizer=local * 2 * precision.master + n_tensors * 4,  # exp_avg, exp_avg_sq; step
        activations=_saved_activations(cfg, batch_size * seq_len, precision.compute, checkpointed_blocks),
        transient=_transient(cfg, groups, batch_size * seq_len, sharded, precision, checkpointed_blocks),
    )


def _saved_activations(cfg: ModelConfig, tokens: int, compute: int, checkpointed: int) -> int:
    full_blocks = cfg.n_layers - checkpointed
    per_token = full_blocks * block_activation_bytes(cfg, compute)
    per_token += checkpointed * compute * cfg.d_model  # a checkpointed block keeps only its input
    per_token += 2 * compute * cfg.d_model + 4 * cfg.d_model  # final norm
    # Logits exist only where a loss is taken; plan for t near 1, where every token is masked.
    per_token += 4 * cfg.vocab_size  # cross-entropy keeps the float32 log-softmax
    return tokens * per_token


def _transient(
    cfg: ModelConfig, groups: dict, tokens: int, sharded: bool, precision: Precision, checkpointed: int
) -> int:
    numel = {name: sum(math.prod(s) for s in shapes) for name, shapes in groups.items()}
    weights = 0
    if sharded:
        # The root stays gathered through the step, plus the block in use and the one prefetched,
        # and one group's unsharded gradients before their reduce-scatter.
        largest = max(numel.values())
        weights = (numel["root"] + 2 * numel["block0"]) * precision.compute
        weights += largest * (precision.compute + precision.reduce)
    elif precision.autocast:
        weights = sum(numel.values()) * precision.compute  # autocast's cached weight copies
    logits = tokens * cfg.vocab_size * (precision.compute + 4)  # head output and its float32 copy
    recompute = tokens * block_activation_bytes(cfg, precision.compute) if checkpointed else 0
    return weights + logits + recompute


def available_memory(accelerator: str, devices: int = 1) -> tuple[int, str]:
    """(bytes per device, description) for the machine this process runs on.

    On CPU the ``devices`` processes of a node share its RAM.
    """
    if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return props.total_memory, f"{props.name} ({props.total_memory / GIB:.0f} GiB)"
    if accelerator in ("gpu", "cuda"):
        return 0, "no CUDA device"
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    share = f" shared by {devices} processes" if devices > 1 else ""
    return total // devices, f"CPU RAM ({total / GIB:.1f} GiB{share})"


def fmt_bytes(n: int) -> str:
    return f"{n / GIB:,.1f} GiB"
