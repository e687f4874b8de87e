"""The backbone: a dense bidirectional Transformer in the LLaDA / iLLaDA style.

RMSNorm (float32 inside), SwiGLU, half-rotation RoPE, no biases, grouped-query attention
through ``n_kv_heads``. Attention is bidirectional; ``causal=True`` exists only for the
autoregressive baseline objective. Plain PyTorch: no Lightning, no Hydra.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lit_illada.core.attention import ATTENTION_BACKENDS, attention


@dataclass
class ModelConfig:
    """Architecture hyper-parameters. Presets live in ``conf/model/*.yaml``."""

    name: str = "custom"
    vocab_size: int = 264
    n_layers: int = 4
    d_model: int = 256
    n_heads: int = 4
    n_kv_heads: int | None = None  # None means MHA (== n_heads)
    ffn_hidden: int = 768
    max_seq_len: int = 512
    rope_theta: float = 10_000.0
    norm_eps: float = 1e-5
    tie_embeddings: bool = True
    attn_backend: str = "sdpa"
    init_std: float = 0.02

    def __post_init__(self) -> None:
        if self.n_kv_heads is None:
            self.n_kv_heads = self.n_heads
        for key in ("vocab_size", "n_layers", "d_model", "n_heads", "n_kv_heads", "ffn_hidden", "max_seq_len"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"model.{key}={value!r}: must be a positive integer")
        if self.d_model % self.n_heads:
            raise ValueError(
                f"model.d_model={self.d_model} must be divisible by model.n_heads={self.n_heads}"
            )
        if self.n_heads % self.n_kv_heads:
            raise ValueError(
                f"model.n_heads={self.n_heads} must be divisible by model.n_kv_heads={self.n_kv_heads} (GQA groups)"
            )
        if (self.d_model // self.n_heads) % 2:
            raise ValueError(f"head dim d_model/n_heads={self.d_model // self.n_heads} must be even for RoPE")
        if self.attn_backend not in ATTENTION_BACKENDS:
            raise ValueError(
                f"model.attn_backend={self.attn_backend!r} is unknown; choose one of {sorted(ATTENTION_BACKENDS)}"
            )

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def to_dict(self) -> dict:
        return asdict(self)


class RMSNorm(nn.Module):
    """x · rsqrt(mean(x²) + eps) in float32, cast back, then scaled (LLaDA's order)."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return normed.to(x.dtype) * self.weight


def rope_tables(seq_len: int, head_dim: int, theta: float, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables (seq_len, head_dim) for half-rotation RoPE with frequencies θ^(−2i/d)."""
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(seq_len, device=device, dtype=torch.float32), inv_freq)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the first half of each head against the second half (HF Llama style)."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return (x.float() * cos + rotated.float() * sin).to(x.dtype)


KVHook = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class KVCache:
    """Keys and values (after RoPE) of every layer for a whole sequence: (B, Hkv, S, D) each.

    Diffusion decoding is bidirectional, so a cache is an approximation (Fast-dLLM): keys of
    tokens outside the window being decoded are reused from the last full forward, even
    though those tokens would attend to a slightly different context now.
    """

    def __init__(self, n_layers: int) -> None:
        self.keys: list[torch.Tensor | None] = [None] * n_layers
        self.values: list[torch.Tensor | None] = [None] * n_layers

    @property
    def length(self) -> int:
        return 0 if self.keys[0] is None else self.keys[0].shape[2]

    def store(self, layer: int) -> KVHook:
        """Hook for a full forward: remember this layer's keys/values, attend as usual."""

        def hook(k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            self.keys[layer], self.values[layer] = k, v
            return k, v

        return hook

    def splice(self, layer: int, start: int) -> KVHook:
        """Hook for a window forward: fresh keys/values at [start, start + w), cached elsewhere."""

        def hook(k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            end = start + k.shape[2]
            cached_k, cached_v = self.keys[layer], self.values[layer]
            k = torch.cat([cached_k[:, :, :start], k, cached_k[:, :, end:]], dim=2)
            v = torch.cat([cached_v[:, :, :start], v, cached_v[:, :, end:]], dim=2)
            return k, v

        return hook


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        self.backend = cfg.attn_backend
        self.q_proj = nn.Linear(cfg.d_model, cfg.n_heads * cfg.head_dim, bias=False)
        self.k_proj = nn.Linear(cfg.d_model, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.v_proj = nn.Linear(cfg.d_model, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.attn_out = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.d_model, bias=False)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, causal: bool, kv_hook: KVHook | None = None
    ) -> torch.Tensor:
        B, L, _ = x.shape
        q = self.q_proj(x).view(B, L, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(B, L, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(B, L, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if kv_hook is not None:  # KV cache: store these keys/values, or splice them into cached ones
            k, v = kv_hook(k, v)
        out = attention(self.backend, q, k, v, causal=causal)  # (B, H, L, D)
        return self.attn_out(out.transpose(1, 2).reshape(B, L, -1))


class SwiGLU(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.ff_proj = nn.Linear(cfg.d_model, cfg.ffn_hidden, bias=False)  # gate (SiLU)
        self.up_proj = nn.Linear(cfg.d_model, cfg.ffn_hidden, bias=False)
        self.ff_out = nn.Linear(cfg.ffn_hidden, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ff_out(F.silu(self.ff_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.attn = Attention(cfg)
        self.ff_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.mlp = SwiGLU(cfg)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, causal: bool, kv_hook: KVHook | None = None
    ) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), cos, sin, causal, kv_hook)
        return x + self.mlp(self.ff_norm(x))


class Transformer(nn.Module):
    """ids (B, L) → logits. Build under ``torch.device('meta')`` to count without allocating."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.wte.weight
        self._rope_cache: tuple[torch.Tensor, torch.Tensor] | None = None
        if self.wte.weight.device.type != "meta":
            self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        """GPT-style init; output projections scaled by depth. Safe to call after ``to_empty``."""
        std = self.config.init_std
        for name, p in self.named_parameters():
            if name.endswith("norm.weight") or name == "ln_f.weight":
                p.fill_(1.0)
            elif name.endswith(("attn_out.weight", "ff_out.weight")) and name.startswith("blocks"):
                nn.init.normal_(p, std=std / math.sqrt(2 * self.config.n_layers))
            else:
                nn.init.normal_(p, std=std)
        self._rope_cache = None

    def num_params(self, non_embedding: bool = False) -> int:
        """Exact count (tied weights once). Works on the meta device."""
        total = sum(p.numel() for p in self.parameters())
        if non_embedding:
            total -= self.wte.weight.numel()
            if not self.config.tie_embeddings:
                total -= self.lm_head.weight.numel()
        return total

    def _rope(self, seq_len: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        cache = self._rope_cache
        if cache is None or cache[0].shape[0] < seq_len or cache[0].device != device:
            length = max(seq_len, self.config.max_seq_len)
            cache = rope_tables(length, self.config.head_dim, self.config.rope_theta, device)
            self._rope_cache = cache
        return cache[0][:seq_len], cache[1][:seq_len]

    def hidden_states(
        self,
        input_ids: torch.Tensor,
        causal: bool = False,
        start: int = 0,
        kv_hooks: list[KVHook] | None = None,
    ) -> torch.Tensor:
        """Final hidden states of ``input_ids``, which sit at positions [start, start + L)."""
        end = start + input_ids.shape[1]
        if end > self.config.max_seq_len:
            raise ValueError(f"sequence length {end} exceeds model.max_seq_len={self.config.max_seq_len}")
        cos, sin = self._rope(end, input_ids.device)
        cos, sin = cos[start:end], sin[start:end]
        x = self.wte(input_ids)
        for i, block in enumerate(self.blocks):
            x = block(x, cos, sin, causal, kv_hooks[i] if kv_hooks else None)
        return self.ln_f(x)

    def prefill(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, KVCache]:
        """Full bidirectional forward that also returns every layer's keys and values."""
        cache = KVCache(self.config.n_layers)
        hooks = [cache.store(i) for i in range(self.config.n_layers)]
        return self.lm_head(self.hidden_states(input_ids, kv_hooks=hooks)), cache

    def forward_window(self, window_ids: torch.Tensor, start: int, cache: KVCache) -> torch.Tensor:
        """Logits for the tokens at [start, start + w) only, attending to ``cache`` elsewhere.

        Costs O(w · S) attention and O(w) everything else, instead of a full forward.
        """
        if start + window_ids.shape[1] > cache.length:
            raise ValueError(f"window [{start}, {start + window_ids.shape[1]}) exceeds the cached length {cache.length}")
        hooks = [cache.splice(i, start) for i in range(self.config.n_layers)]
        return self.lm_head(self.hidden_states(window_ids, start=start, kv_hooks=hooks))

    def forward(
        self,
        input_ids: torch.Tensor,
        causal: bool = False,
        logits_at: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits (B, L, V); or (N, V) at the N positions where bool ``logits_at`` is True.

        ``logits_at`` keeps the LM head (the largest matmul for big vocabularies) off the
        positions where no loss is taken.
        """
        h = self.hidden_states(input_ids, causal=causal)
        if logits_at is not None:
            h = h[logits_at]
        return self.lm_head(h)
