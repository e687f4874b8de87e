"""Parameter counts and per-device training memory, computed without allocating weights.

Counts are analytic from the config (nothing is built, not even on the meta device), so a
model of any depth is counted at once. The memory model follows what training holds on one
device:

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

from lit_illada.core.model import ModelConfig

GIB = 1024**3


@dataclass(frozen=True)
class ParamGroups:
    """Parameter shapes per FSDP group, counted from the config alone: ``root`` (embedding, final
    norm, an untied head) and one ``block``, repeated ``n_layers`` times (every block is alike).
    Shapes in ``Transformer.named_parameters()`` order; checked against built models in the tests."""

    root: tuple[tuple[int, ...], ...]
    block: tuple[tuple[int, ...], ...]
    n_layers: int

    @property
    def n_tensors(self) -> int:
        return len(self.root) + self.n_layers * len(self.block)


def param_groups(cfg: ModelConfig) -> ParamGroups:
    d, q, kv, f = cfg.d_model, cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim, cfg.ffn_hidden
    block = (
        (d,),  # attn_norm
        (q, d), (kv, d), (kv, d), (d, q),  # q_proj, k_proj, v_proj, attn_out
        (d,),  # ff_norm
        (f, d), (f, d), (d, f),  # ff_proj (gate), up_proj, ff_out
    )
    root = ((cfg.vocab_size, d), (d,)) + (() if cfg.tie_embeddings else ((cfg.vocab_size, d),))
    return ParamGroups(root=root, block=block, n_layers=cfg.n_layers)


def count_params(cfg: ModelConfig) -> int:
    """Exact parameter count (a tied head once), as ``Transformer(cfg).num_params()``, in O(1)."""
    groups = param_groups(cfg)
    return _numel(groups.root) + groups.n_layers * _numel(groups.block)


def _numel(shapes) -> int:
    return sum(math.prod(shape) for shape in shapes)


def shard_numel(shape: tuple[int, ...], world: int) -> int:
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
    groups = param_groups(cfg)
    shards = world if sharded else 1
    local = sum(shard_numel(s, shards) for s in groups.root)
    local += groups.n_layers * sum(shard_numel(s, shards) for s in groups.block)
    return TrainingMemory(
        params=local * precision.master,
        grads=local * precision.master,
        optimizer=local * 2 * precision.master + groups.n_tensors * 4,  # exp_avg, exp_avg_sq; step
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
    cfg: ModelConfig, groups: ParamGroups, tokens: int, sharded: bool, precision: Precision, checkpointed: int
) -> int:
    root, block = _numel(groups.root), _numel(groups.block)
    weights = 0
    if sharded:
        # The root stays gathered through the step, plus the block in use and the one prefetched,
        # and one group's unsharded gradients before their reduce-scatter.
        largest = max(root, block)
        weights = (root + 2 * block) * precision.compute
        weights += largest * (precision.compute + precision.reduce)
    elif precision.autocast:
        weights = (root + groups.n_layers * block) * precision.compute  # autocast's cached weight copies
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
