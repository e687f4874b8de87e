"""Left-to-right decoding for the autoregressive baseline, reported in the same SampleResult."""

from __future__ import annotations

import time

import torch

from lit_illada.sampling.result import SampleResult


@torch.no_grad()
def autoregressive_generate(
    causal_lm,
    prompt: torch.Tensor,
    gen_length: int,
    temperature: float = 0.0,
    generator: torch.Generator | None = None,
) -> SampleResult:
    """Greedy (temperature 0) or sampled decoding, one forward per token (no KV cache)."""
    started = time.perf_counter()
    x = prompt
    for _ in range(gen_length):
        logits = causal_lm(x)[:, -1].double()
        if temperature == 0:
            nxt = logits.argmax(-1)
        else:
            probs = torch.softmax(logits / temperature, dim=-1)
            nxt = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
        x = torch.cat([x, nxt[:, None]], dim=1)
    if x.is_cuda:
        torch.cuda.synchronize(x.device)
    batch = prompt.shape[0]
    return SampleResult(
        tokens=x,
        prompt_length=prompt.shape[1],
        nfe=gen_length,
        committed_per_step=[batch] * gen_length,
        seconds=time.perf_counter() - started,
    )
