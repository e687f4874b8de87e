"""d. Attention backends (``model.attn_backend``): sdpa (flash on GPU), eager and xformers give the
same output within bf16 tolerance, and how fast each is, forward and forward + backward.

Inputs are bf16 at iLLaDA-8B's attention shape (32 query heads, 8 KV heads, head dim 128) over
rows of 2048 tokens; every backend is compared with the float32 math of the same inputs. A
backend that cannot load (xformers without a matching build) is reported with its message.
"""

from __future__ import annotations

import torch

from lit_illada.core.attention import ATTENTION_BACKENDS, eager_attention
from lit_illada.core.model import ModelConfig, Transformer

from .common import Section, Settings, default_dtype, median_seconds

TOLERANCE = 2e-2  # max |out - float32 reference| / max |reference|; bf16 keeps 8 significant bits
GPU_SHAPE = dict(batch=4, heads=32, kv_heads=8, seq=2048, head_dim=128)
SMOKE_SHAPE = dict(batch=1, heads=4, kv_heads=2, seq=32, head_dim=16)


def attention_backends(settings: Settings, section: Section) -> None:
    shape = SMOKE_SHAPE if settings.smoke else GPU_SHAPE
    repeats = 2 if settings.smoke else 10
    device, dtype = settings.device, torch.bfloat16
    generator = torch.Generator(device).manual_seed(0)

    def draw(heads: int) -> torch.Tensor:
        size = (shape["batch"], heads, shape["seq"], shape["head_dim"])
        return torch.randn(size, device=device, dtype=dtype, generator=generator)

    q, k, v = draw(shape["heads"]), draw(shape["kv_heads"]), draw(shape["kv_heads"])
    section.result.update(shape=shape, dtype="bfloat16", tolerance=TOLERANCE, backends={})
    for causal in (False, True):
        reference = eager_attention(q.float(), k.float(), v.float(), causal=causal)
        for name, backend in ATTENTION_BACKENDS.items():
            record = section.result["backends"].setdefault(name, {})
            if record.get("status") == "unavailable":
                continue
            try:
                out = backend(q, k, v, causal)
            except Exception as err:  # noqa: BLE001 - an optional backend that cannot run here
                if name != "xformers":
                    raise
                record.update(status="unavailable", message=f"{type(err).__name__}: {err}")
                section.show(name, f"unavailable: {record['message'][:160]}")
                continue
            error = ((out.float() - reference).abs().max() / reference.abs().max()).item()
            record["status"] = "ok"
            record["causal_rel_err" if causal else "rel_err"] = error
            if not causal:
                record.update(_speed(backend, q, k, v, device, repeats))
    for name, record in section.result["backends"].items():
        if record.get("status") != "ok":
            continue
        close = record["rel_err"] <= TOLERANCE and record["causal_rel_err"] <= TOLERANCE
        section.show(
            name,
            f"rel err {record['rel_err']:.2e} (causal {record['causal_rel_err']:.2e}); "
            f"{1e3 * record['forward_s']:.2f} ms forward, {1e3 * record['forward_backward_s']:.2f} ms "
            "forward + backward",
        )
        section.target(
            f"{name} output equals float32 attention",
            max(record["rel_err"], record["causal_rel_err"]),
            f"rel err <= {TOLERANCE}",
            close,
        )
    logits_error = model_logits_error(settings)
    section.result["model_logits_rel_err_eager_vs_sdpa"] = logits_error
    section.show("whole model, eager vs sdpa logits", f"rel err {logits_error:.2e}")
    section.target(
        "model logits, eager vs sdpa backend",
        logits_error,
        f"rel err <= {TOLERANCE}",
        logits_error <= TOLERANCE,
    )


def _speed(backend, q, k, v, device, repeats: int) -> dict:
    forward = median_seconds(lambda: backend(q, k, v, False), device, repeats)
    q, k, v = (t.detach().requires_grad_() for t in (q, k, v))
    grad = torch.ones_like(q)

    def forward_backward():
        backend(q, k, v, False).backward(grad)

    return {"forward_s": forward, "forward_backward_s": median_seconds(forward_backward, device, repeats)}


def model_logits_error(settings: Settings) -> float:
    """One small bf16 GQA Transformer, its logits with the eager backend against sdpa."""
    config = ModelConfig(
        name="attention-check",
        vocab_size=264,
        n_layers=2,
        d_model=256,
        n_heads=8,
        n_kv_heads=2,
        ffn_hidden=512,
        max_seq_len=512,
    )
    torch.manual_seed(0)
    with torch.device(settings.device), default_dtype(torch.bfloat16):
        net = Transformer(config).eval()
    ids = torch.randint(0, config.vocab_size, (2, 64 if settings.smoke else 512), device=settings.device)
    with torch.no_grad():
        sdpa = net(ids).float()
        for block in net.blocks:
            block.attn.backend = "eager"
        eager = net(ids).float()
    return ((eager - sdpa).abs().max() / sdpa.abs().max()).item()
