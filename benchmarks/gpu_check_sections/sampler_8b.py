"""e. Sampler speed at the iLLaDA-8B shape (random weights, bf16, batch 1, prompt 128, gen 256,
block 32): the framework's ``confidence`` sampler, with no cache, prefix and dual cache, against a
minimal LLaDA-style loop written here, in the same process on the same model.

The reference loop is LLaDA's algorithm at temperature 0 (REFERENCE.md, "LLaDA sampler"), in as
few lines as it takes; the framework's sampler must give the same tokens, as fast.
"""

from __future__ import annotations

import time

import torch

from lit_illada.config.build import load_model_preset
from lit_illada.core.model import ModelConfig, Transformer
from lit_illada.sampling import ConfidenceSampler
from lit_illada.sampling.cache import DualCache, NoCache, PrefixCache

from .common import MASK_ID, SMOKE_MODEL, Section, Settings, default_dtype, median_seconds, ratio, sync

FULL = dict(preset="illada_8b", prompt=128, gen=256, block=32, steps=(256, 64))
SMOKE = dict(preset=None, prompt=16, gen=32, block=8, steps=(32, 8))
# One H200, torch 2.11 + CUDA 13 (the anchors): LLaDA's own sampler on this shape.
ANCHORS = {"forward_384_tokens_s": 0.0267, "tokens_per_s": {256: 33.1, 64: 136.5}}
TARGET_SAME_SPEED, TARGET_PREFIX_STEP = 0.95, 2.0


@torch.no_grad()
def reference_generate(
    model, prompt: torch.Tensor, *, steps: int, gen_length: int, block_length: int, mask_id: int
) -> torch.Tensor:
    """LLaDA's low-confidence remasking at temperature 0, block by block: each block gets
    steps / blocks steps; a step commits the most probable predictions among the block's masked
    positions, m // steps of them (one more in the first m % steps steps)."""
    rows, prompt_length = prompt.shape
    x = torch.cat([prompt, prompt.new_full((rows, gen_length), mask_id)], dim=1)
    positions = torch.arange(x.shape[1], device=x.device)
    steps_per_block = steps // (gen_length // block_length)
    for end in range(prompt_length + block_length, x.shape[1] + 1, block_length):
        masked_in_block = (x[:, end - block_length : end] == mask_id).sum(dim=1).tolist()
        for step in range(steps_per_block):
            logits = model(x)
            predicted = logits.argmax(dim=-1)
            probability = torch.softmax(logits, dim=-1).gather(-1, predicted.unsqueeze(-1)).squeeze(-1)
            open_ = (x == mask_id) & (positions < end)
            probability = torch.where(open_, probability, -torch.inf)
            for row, masked in enumerate(masked_in_block):
                count = masked // steps_per_block + (1 if step < masked % steps_per_block else 0)
                if count:
                    chosen = probability[row].topk(count).indices
                    x[row, chosen] = predicted[row, chosen]
    return x


def build_model(settings: Settings, config: ModelConfig) -> Transformer:
    """Random weights allocated on the device directly in the sampling dtype (no float32 copy)."""
    torch.manual_seed(0)
    with torch.device(settings.device), default_dtype(settings.dtype):
        return Transformer(config).eval()


def sampler_speed_8b(settings: Settings, section: Section) -> None:
    shape = SMOKE if settings.smoke else FULL
    config = SMOKE_MODEL if settings.smoke else load_model_preset(shape["preset"])
    net = build_model(settings, config)
    section.result.update(
        model=config.name,
        params=net.num_params(),
        dtype=str(settings.dtype),
        prompt=shape["prompt"],
        gen_length=shape["gen"],
        block_length=shape["block"],
        anchors_h200_llada_reference=None if settings.smoke else ANCHORS,
        runs={},
    )
    generator = torch.Generator().manual_seed(0)
    prompt = torch.randint(MASK_ID + 1, config.vocab_size, (1, shape["prompt"]), generator=generator)
    prompt = prompt.to(settings.device)
    full = torch.cat([prompt, prompt.new_full((1, shape["gen"]), MASK_ID)], dim=1)
    with torch.no_grad():
        forward = median_seconds(lambda: net(full), settings.device, repeats=3 if settings.smoke else 10)
    section.result["seconds_per_forward"] = forward
    section.show(f"one forward over {full.shape[1]} tokens", f"{1e3 * forward:.1f} ms")

    def sampler(steps: int, cache) -> ConfidenceSampler:
        return ConfidenceSampler(
            gen_length=shape["gen"], block_length=shape["block"], steps=steps, mask_id=MASK_ID, cache=cache
        )

    def reference(steps: int):
        sync(settings.device)
        started = time.perf_counter()
        tokens = reference_generate(
            net, prompt, steps=steps, gen_length=shape["gen"], block_length=shape["block"], mask_id=MASK_ID
        )
        sync(settings.device)
        return tokens, time.perf_counter() - started, steps

    def framework(steps: int, cache):
        result = sampler(steps, cache).generate(net, prompt)
        return result.tokens, result.seconds, result.nfe

    # Warm every path's kernels (two steps per block: a cache's refresh and its window forward).
    warm = 2 * shape["gen"] // shape["block"]
    reference(warm)
    for cache in (NoCache(), PrefixCache(), DualCache()):
        framework(warm, cache)
    runs = section.result["runs"]
    for steps in shape["steps"]:
        ref_tokens, *ref = reference(steps)
        runs[f"reference/{steps}"] = _run(ref, shape["gen"])
        tokens, *timing = framework(steps, NoCache())
        runs[f"confidence/{steps}"] = {
            **_run(timing, shape["gen"]),
            "identical_to_reference": bool(torch.equal(tokens, ref_tokens)),
        }
        for name, cache in (("prefix", PrefixCache()), ("dual", DualCache())):
            _, *timing = framework(steps, cache)
            runs[f"confidence+{name}/{steps}"] = _run(timing, shape["gen"])
    report(section, runs, shape["steps"])


def report(section: Section, runs: dict, step_counts: tuple[int, ...]) -> None:
    """The table lines and the targets: the framework against the reference, the caches per step."""
    for steps in step_counts:
        ref, own = runs[f"reference/{steps}"], runs[f"confidence/{steps}"]
        prefix, dual = runs[f"confidence+prefix/{steps}"], runs[f"confidence+dual/{steps}"]
        same = ratio(own["tokens_per_s"], ref["tokens_per_s"])
        prefix_step = ratio(own["seconds_per_step"], prefix["seconds_per_step"])
        dual_step = ratio(own["seconds_per_step"], dual["seconds_per_step"])
        section.show(
            f"steps {steps}: tok/s reference | confidence | +prefix | +dual",
            f"{ref['tokens_per_s']:.1f} | {own['tokens_per_s']:.1f} | {prefix['tokens_per_s']:.1f} | "
            f"{dual['tokens_per_s']:.1f}; identical tokens: {own['identical_to_reference']}",
        )
        section.show(
            f"steps {steps}: per-step speed-up prefix | dual", f"{prefix_step:.2f}x | {dual_step:.2f}x"
        )
        section.target(
            f"confidence / reference tok/s, steps {steps}",
            same,
            f">= {TARGET_SAME_SPEED} (within 5%)",
            same >= TARGET_SAME_SPEED,
        )
        section.target(
            f"prefix cache per-step speed-up, steps {steps}",
            prefix_step,
            f">= {TARGET_PREFIX_STEP}",
            prefix_step >= TARGET_PREFIX_STEP,
        )


def _run(timing: list, gen_length: int) -> dict:
    seconds, nfe = timing
    return {
        "seconds": round(seconds, 4),
        "nfe": nfe,
        "seconds_per_step": seconds / nfe,
        "tokens_per_s": round(gen_length / seconds, 2),
    }
