"""Attention backends. Each maps q (B, H, L, D) and k, v (B, Hkv, L, D) to (B, H, L, D).

GQA: query head h reads KV head h // (H / Hkv), i.e. K/V are expanded with
``repeat_interleave`` over heads, as in LLaDA. The backend is a model config field
(``model.attn_backend``); adding one means adding a function to ``ATTENTION_BACKENDS``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F


def _expand_kv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    groups = q.shape[1] // k.shape[1]
    if groups == 1:
        return k, v
    return k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)


def eager_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool) -> torch.Tensor:
    """Reference math: softmax(q kᵀ / √d) v in float32."""
    k, v = _expand_kv(q, k, v)
    scores = (q.float() @ k.float().transpose(-1, -2)) / math.sqrt(q.shape[-1])
    if causal:
        L, S = q.shape[-2], k.shape[-2]
        keep = torch.ones(L, S, dtype=torch.bool, device=q.device).tril(S - L)
        scores = scores.masked_fill(~keep, float("-inf"))
    return (scores.softmax(-1) @ v.float()).to(q.dtype)


def sdpa_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool) -> torch.Tensor:
    """PyTorch SDPA (flash / memory-efficient kernels on CUDA) with native GQA."""
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=k.shape[1] != q.shape[1])


def _load_xformers():
    try:
        import xformers.ops as xops  # noqa: PLC0415 - optional dependency

        return xops
    except Exception as err:  # ImportError, or a binary built against another torch
        raise RuntimeError(
            "model.attn_backend=xformers needs a working xformers install "
            f"({type(err).__name__}: {err}). Install it with `pip install lit_illada[gpu]` "
            "for a matching torch build, or use model.attn_backend=sdpa."
        ) from err


def xformers_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool) -> torch.Tensor:
    xops = _load_xformers()
    if q.device.type != "cuda":
        raise RuntimeError(
            "model.attn_backend=xformers runs on CUDA only; use model.attn_backend=sdpa on "
            f"{q.device.type}."
        )
    k, v = _expand_kv(q, k, v)
    bias = xops.LowerTriangularMask() if causal else None
    # xformers wants (B, L, H, D)
    out = xops.memory_efficient_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_bias=bias
    )
    return out.transpose(1, 2)


AttentionFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, bool], torch.Tensor]

ATTENTION_BACKENDS: dict[str, AttentionFn] = {
    "sdpa": sdpa_attention,
    "eager": eager_attention,
    "xformers": xformers_attention,
}


def attention(backend: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool) -> torch.Tensor:
    return ATTENTION_BACKENDS[backend](q, k, v, causal)
