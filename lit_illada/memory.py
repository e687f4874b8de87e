"""Parameter counts and a training-memory estimate, computed without allocating weights.

The count builds the model on the meta device, so an 8B preset is counted in
milliseconds. The estimate is deliberately simple (mixed precision with fp32 master
weights and AdamW): enough to refuse a run that cannot fit before anything is allocated.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from lit_illada.model import ModelConfig, Transformer

BYTES_PER_PARAM_TRAINING = 16  # fp32 weights 4 + grads 4 + AdamW moments 8
GIB = 1024**3


def count_params(cfg: ModelConfig) -> int:
    with torch.device("meta"):
        return Transformer(cfg).num_params()


@dataclass
class MemoryEstimate:
    params: int
    weights_grads_optimizer: int  # bytes, before sharding
    activations: int  # bytes per device
    shards: int

    @property
    def per_device(self) -> int:
        return self.weights_grads_optimizer // self.shards + self.activations


def estimate_training_memory(
    cfg: ModelConfig, batch_size: int, seq_len: int, activation_bytes: int = 4, shards: int = 1
) -> MemoryEstimate:
    """Bytes needed to train ``cfg``; ``shards`` > 1 for FSDP-style sharding of state.

    Activations follow Korthikanti et al. (≈34·B·L·d values kept per layer with a fused
    attention kernel) plus float32 logits at the ~half of positions that are masked.
    """
    params = count_params(cfg)
    tokens = batch_size * seq_len
    activations = 34 * tokens * cfg.d_model * cfg.n_layers * activation_bytes // 2
    activations += tokens // 2 * cfg.vocab_size * 4 * 2  # logits and their gradient
    return MemoryEstimate(params, params * BYTES_PER_PARAM_TRAINING, activations, shards)


def available_memory(accelerator: str, devices: int | str = 1) -> tuple[int, str]:
    """(bytes per device, description) for the machine this process runs on."""
    if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return props.total_memory, f"{props.name} ({props.total_memory / GIB:.0f} GiB)"
    if accelerator in ("gpu", "cuda"):
        return 0, "no CUDA device"
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return total, f"CPU RAM ({total / GIB:.1f} GiB)"


def fmt_bytes(n: int) -> str:
    return f"{n / GIB:,.1f} GiB"
