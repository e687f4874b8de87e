"""transformers model for checkpoints exported by lit_illada (``convert to_hf``).

A masked diffusion language model (LLaDA / iLLaDA): a dense Transformer with bidirectional
attention, RMSNorm (computed in float32), half-rotation RoPE, SwiGLU, grouped-query attention
and no biases; the LM head is either the embedding matrix (tied) or its own matrix. It
returns logits at every position; denoising (which positions to unmask, in which order) is
the sampler's job and is not part of this file.

Self-contained: copied next to the weights and loaded with ``trust_remote_code=True``, so it
imports only torch, transformers and its configuration file. Parameter names follow LLaDA's
checkpoint layout (``model.transformer.blocks.{i}.q_proj.weight``, ...), so the same weights
load here, in lit_illada and in LLaDA's own code.

    model = AutoModelForMaskedLM.from_pretrained(folder, trust_remote_code=True)
    logits = model(input_ids).logits       # (B, L) -> (B, L, embedding rows)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import MaskedLMOutput

from .configuration_lit_illada import SUPPORTED_SETTINGS, LitIlladaConfig


class LitIlladaRMSNorm(nn.Module):
    """x / rms(x) in float32, cast back to the input dtype, then scaled."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return normed.to(x.dtype) * self.weight


def rotary_tables(length: int, head_dim: int, theta: float, device: torch.device) -> tuple[torch.Tensor, ...]:
    """cos and sin (length, head_dim) of the angles position · theta^(-2i / head_dim), in float32.

    Computed per call rather than kept in a buffer: transformers may build the model on the
    meta device, where a buffer computed in ``__init__`` would never get its values.
    """
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(length, device=device, dtype=torch.float32), inv_freq)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE on (B, H, L, D): the first half of each head turns against the second half."""
    half = x.shape[-1] // 2
    turned = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return (x.float() * cos + turned.float() * sin).to(x.dtype)


class LitIlladaBlock(nn.Module):
    """Pre-norm block: x + attention(norm(x)), then x + SwiGLU(norm(x))."""

    def __init__(self, config: LitIlladaConfig) -> None:
        super().__init__()
        d, self.n_heads, self.n_kv_heads = config.d_model, config.n_heads, config.num_key_value_heads
        self.head_dim = d // self.n_heads
        self.attn_norm = LitIlladaRMSNorm(d, config.rms_norm_eps)
        self.q_proj = nn.Linear(d, self.n_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(d, self.n_kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(d, self.n_kv_heads * self.head_dim, bias=False)
        self.attn_out = nn.Linear(self.n_heads * self.head_dim, d, bias=False)
        self.ff_norm = LitIlladaRMSNorm(d, config.rms_norm_eps)
        self.ff_proj = nn.Linear(d, config.mlp_hidden_size, bias=False)  # the gate, through SiLU
        self.up_proj = nn.Linear(d, config.mlp_hidden_size, bias=False)
        self.ff_out = nn.Linear(config.mlp_hidden_size, d, bias=False)
        for projection in (self.attn_out, self.ff_out):  # into the residual stream: init scaled by depth
            projection.residual_output = True

    def attention(self, x: torch.Tensor, cos, sin, keep: torch.Tensor | None) -> torch.Tensor:
        batch, length, _ = x.shape
        q = self.q_proj(x).view(batch, length, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(batch, length, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(batch, length, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        groups = self.n_heads // self.n_kv_heads
        if groups > 1:  # query head h reads key/value head h // groups
            k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)  # bidirectional: no causal mask
        return self.attn_out(out.transpose(1, 2).reshape(batch, length, -1))

    def forward(self, x: torch.Tensor, cos, sin, keep: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attention(self.attn_norm(x), cos, sin, keep)
        h = self.ff_norm(x)
        return x + self.ff_out(F.silu(self.ff_proj(h)) * self.up_proj(h))


class LitIlladaBackbone(nn.Module):
    """Holds the parameters under LLaDA's names: ``transformer.{wte, blocks, ln_f, ff_out}``."""

    def __init__(self, config: LitIlladaConfig) -> None:
        super().__init__()
        rows = config.embedding_rows
        parts = {
            "wte": nn.Embedding(rows, config.d_model),
            "blocks": nn.ModuleList(LitIlladaBlock(config) for _ in range(config.n_layers)),
            "ln_f": LitIlladaRMSNorm(config.d_model, config.rms_norm_eps),
        }
        if not config.weight_tying:
            parts["ff_out"] = nn.Linear(config.d_model, rows, bias=False)  # the LM head
        self.transformer = nn.ModuleDict(parts)


class LitIlladaForMaskedLM(PreTrainedModel):
    """Logits over the vocabulary at every position; ``labels`` gives masked-LM cross-entropy."""

    config_class = LitIlladaConfig
    base_model_prefix = "model"
    _no_split_modules = ["LitIlladaBlock"]

    def __init__(self, config: LitIlladaConfig) -> None:
        super().__init__(config)
        _check_architecture(config)
        self.model = LitIlladaBackbone(config)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """For a model built from a config alone; loaded weights replace all of it."""
        std = self.config.init_std
        if getattr(module, "residual_output", False):
            std /= math.sqrt(2 * self.config.n_layers)
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=std)
        elif isinstance(module, LitIlladaRMSNorm):
            nn.init.ones_(module.weight)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.transformer.wte

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.model.transformer.wte = value

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> MaskedLMOutput | tuple:
        """``attention_mask`` (B, L): 1 for tokens, 0 for padding no position may attend to.

        ``labels``: token ids where the loss is taken, -100 elsewhere. The loss is the plain
        mean cross-entropy; the diffusion objective's 1/t weighting is the trainer's business.
        """
        length = input_ids.shape[1]
        if length > self.config.max_sequence_length:
            raise ValueError(
                f"sequence length {length} exceeds max_sequence_length={self.config.max_sequence_length}"
            )
        parts = self.model.transformer
        cos, sin = rotary_tables(length, self.config.d_model // self.config.n_heads,
                                 self.config.rope_theta, input_ids.device)  # fmt: skip
        keep = None if attention_mask is None else attention_mask.bool()[:, None, None, :]
        x = parts.wte(input_ids)
        hidden = [x] if output_hidden_states else None
        for block in parts.blocks:
            x = block(x, cos, sin, keep)
            if hidden is not None:
                hidden.append(x)
        x = parts.ln_f(x)
        if hidden is not None:  # as transformers' models do: the last entry is the normed one
            hidden[-1] = x
        head = parts.wte.weight if self.config.weight_tying else parts.ff_out.weight
        logits = F.linear(x, head.to(x.device))  # a device map may put wte on another device
        loss = None
        if labels is not None:
            flat = logits.float().view(-1, logits.shape[-1])
            loss = F.cross_entropy(flat, labels.view(-1), ignore_index=-100)
        hidden_states = tuple(hidden) if hidden is not None else None
        use_dict = return_dict if return_dict is not None else self.config.return_dict
        if not use_dict:
            return tuple(item for item in (loss, logits, hidden_states) if item is not None)
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=hidden_states)


def _check_architecture(config: LitIlladaConfig) -> None:
    """Refuse a config of a LLaDA variant this code does not implement, rather than compute another thing."""
    wrong = {key: getattr(config, key) for key, value in SUPPORTED_SETTINGS.items()
             if getattr(config, key, value) != value}  # fmt: skip
    if getattr(config, "clip_qkv", None) is not None:
        wrong["clip_qkv"] = config.clip_qkv
    if wrong:
        raise ValueError(f"config sets {wrong}; this model implements only {SUPPORTED_SETTINGS}")
    if config.d_model % config.n_heads or config.n_heads % config.num_key_value_heads:
        raise ValueError(
            f"d_model={config.d_model}, n_heads={config.n_heads}, n_kv_heads={config.num_key_value_heads}: "
            "d_model must divide into n_heads heads, and n_heads into n_kv_heads groups"
        )
