"""Sampler efficiency side by side: NFE, latency, tokens/s, tokens per forward and quality.

    # a trained checkpoint (the default training run), with quality numbers
    python benchmarks/sampler_speed.py --ckpt runs/<name> --prompts 16
    # random weights at a larger shape: per-step cost and the KV cache on their own
    python benchmarks/sampler_speed.py --random-model small --prompt-len 512 --gen-len 256

Every policy runs in this process on the same model and the same prompts, each built from
its ``conf/sampler/<name>.yaml``, composed by Hydra with command-line style overrides
(``sampler/cache=prefix``) and built by ``hydra.utils.instantiate`` (the public sampler API).
Quality, on held-out standard-library code the model never trained on:

* ``span_accuracy``: the prompt is the first ``prompt-len`` bytes of a test-split sequence;
  the fraction of the ``gen-len`` generated tokens equal to the true continuation;
* ``parse_rate``: prompts are test-split function signatures + docstrings; the share of
  generated bodies (cut at EOS, trailing partial line dropped) that ``ast.parse`` accepts.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from lit_illada.config.build import load_model_preset
from lit_illada.config.paths import CONF_DIR
from lit_illada.checkpoints.loader import load
from lit_illada.data import ByteTokenizer, PyStdlibCorpus, StdlibFunctionSFTSource
from lit_illada.data.cache import tokenized_split
from lit_illada.core.model import Transformer
from lit_illada.evaluation.tasks.docstring_to_body import body_parses

# (label, yaml in conf/sampler, Hydra overrides). Policies with a step count get steps = gen_length.
POLICIES = [
    ("confidence", "confidence", []),
    ("random", "random", []),
    ("margin", "margin", []),
    ("entropy", "entropy", []),
    ("threshold_0.9", "threshold", ["sampler.threshold=0.9"]),
    ("threshold_0.7", "threshold", ["sampler.threshold=0.7"]),
    ("factor_1.0", "factor", ["sampler.factor=1.0"]),
    ("eb_0.1", "eb", ["sampler.gamma=0.1"]),
    ("variable_length", "variable_length", []),
    ("confidence+prefix_cache", "confidence", ["sampler/cache=prefix"]),
    ("confidence+dual_cache", "confidence", ["sampler/cache=dual"]),
    ("threshold_0.9+prefix_cache", "threshold", ["sampler.threshold=0.9", "sampler/cache=prefix"]),
    ("threshold_0.9+dual_cache", "threshold", ["sampler.threshold=0.9", "sampler/cache=dual"]),
]
CACHE_POLICIES = {"confidence", "confidence+prefix_cache", "confidence+dual_cache"}


def make_sampler(yaml: str, tokenizer, gen_length: int, block_length: int, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name=f"sampler/{yaml}", overrides=overrides).sampler
    steps = {"steps": gen_length} if "steps" in cfg else {}  # adaptive policies take no step count
    return instantiate(
        cfg, mask_id=tokenizer.mask_id, eos_id=tokenizer.eos_id, gen_length=gen_length,
        block_length=block_length, **steps,
    )


def span_prompts(tokenizer, count: int, prompt_len: int, gen_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Held-out (test split) windows: prompt and true continuation."""
    tokens = torch.from_numpy(tokenized_split(PyStdlibCorpus(), tokenizer, "test").astype("int64"))
    window = prompt_len + gen_len
    starts = torch.linspace(0, len(tokens) - window - 1, count).long()
    rows = torch.stack([tokens[s : s + window] for s in starts.tolist()])
    rows = rows.masked_fill(rows == tokenizer.eos_id, ord("\n"))  # keep file breaks out of the prompt
    return rows[:, :prompt_len], rows[:, prompt_len:]


def function_prompts(count: int) -> list[str]:
    examples = list(StdlibFunctionSFTSource().examples("test"))
    step = max(len(examples) // count, 1)
    return [example.prompt for example in examples[::step][:count]]


def run_policy(sampler, denoise, prompts: torch.Tensor, batch: int) -> dict:
    nfe, seconds, committed, outputs = 0, 0.0, 0, []
    for i in range(0, len(prompts), batch):
        result = sampler.generate(denoise, prompts[i : i + batch], generator=torch.Generator().manual_seed(i))
        nfe += result.nfe
        seconds += result.seconds
        committed += result.generated_tokens
        outputs.append(result.generated)
    calls = len(range(0, len(prompts), batch))
    return {
        "nfe": nfe / calls,
        "seconds": round(seconds / calls, 4),
        "seconds_per_step": round(seconds / nfe, 5),
        "tokens_per_s": round(committed / seconds, 1),
        "tokens_per_forward": round(committed / (nfe * batch), 3),
        "generated": torch.cat(outputs),
    }


def benchmark_checkpoint(args) -> dict:
    loaded = load(args.ckpt)
    net, tokenizer = loaded.net, loaded.tokenizer
    prompts, truth = span_prompts(tokenizer, args.prompts, args.prompt_len, args.gen_len)
    functions = function_prompts(args.prompts)
    rows = []
    for label, yaml, overrides in POLICIES:
        sampler = make_sampler(yaml, tokenizer, args.gen_len, args.block, overrides)
        stats = run_policy(sampler, net, prompts, args.batch)
        generated = stats.pop("generated")
        stats["span_accuracy"] = round((generated == truth).float().mean().item(), 4)
        parsed = 0
        for text in functions:
            ids = torch.tensor([tokenizer.encode(text)])
            out = sampler.generate(net, ids, generator=torch.Generator().manual_seed(0))
            completion = tokenizer.decode(out.generated[0].tolist(), skip_special=False).split("<eos>")[0]
            parsed += body_parses(text, completion)
        stats["parse_rate"] = round(parsed / len(functions), 4)
        rows.append({"policy": label, **stats})
        print(f"# {label}: {json.dumps(stats)}", flush=True)
    return {"model": str(loaded.path), "params": net.num_params(), "policies": rows, **ratios(rows)}


def benchmark_random(args) -> dict:
    torch.manual_seed(0)
    config = load_model_preset(args.random_model)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    with torch.device(device):
        net = Transformer(config).to(dtype).eval()
    tokenizer = ByteTokenizer()
    prompts = torch.randint(0, 256, (args.prompts, args.prompt_len), device=device)
    rows = []
    for label, yaml, overrides in POLICIES:
        if label not in CACHE_POLICIES:
            continue  # random weights: commit rules have nothing to bite on; measure cost only
        sampler = make_sampler(yaml, tokenizer, args.gen_len, args.block, overrides)
        stats = run_policy(sampler, net, prompts, args.batch)
        stats.pop("generated")
        rows.append({"policy": label, **stats})
        print(f"# {label}: {json.dumps(stats)}", flush=True)
    full = _row(rows, "confidence")
    return {
        "model": args.random_model, "params": net.num_params(), "device": device, "dtype": str(dtype),
        "policies": rows,
        "prefix_cache_step_speedup": round(full["seconds_per_step"] / _row(rows, "confidence+prefix_cache")["seconds_per_step"], 2),
        "dual_cache_step_speedup": round(full["seconds_per_step"] / _row(rows, "confidence+dual_cache")["seconds_per_step"], 2),
    }


def _row(rows: list[dict], label: str) -> dict:
    return next(row for row in rows if row["policy"] == label)


def ratios(rows: list[dict]) -> dict:
    base, threshold = _row(rows, "confidence"), _row(rows, "threshold_0.9")
    prefix = _row(rows, "confidence+prefix_cache")
    fast = _row(rows, "threshold_0.9+prefix_cache")
    return {
        "threshold_nfe_over_confidence": round(threshold["nfe"] / base["nfe"], 3),
        "threshold_span_accuracy_delta_points": round(100 * (threshold["span_accuracy"] - base["span_accuracy"]), 2),
        "prefix_cache_step_speedup": round(base["seconds_per_step"] / prefix["seconds_per_step"], 2),
        "prefix_cache_span_accuracy_delta_points": round(100 * (prefix["span_accuracy"] - base["span_accuracy"]), 2),
        "threshold_plus_prefix_cache_tokens_per_s_speedup": round(fast["tokens_per_s"] / base["tokens_per_s"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--ckpt", help="a run directory or .ckpt from python -m lit_illada.train")
    source.add_argument("--random-model", help="a conf/model preset with random weights")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--prompt-len", type=int, default=64)
    parser.add_argument("--gen-len", type=int, default=64)
    parser.add_argument("--block", type=int, default=32)
    parser.add_argument("--batch", type=int, default=1, help="prompts per generate call (1 = latency)")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    started = time.perf_counter()
    result = benchmark_checkpoint(args) if args.ckpt else benchmark_random(args)
    result["settings"] = {k: v for k, v in vars(args).items() if v is not None}
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
