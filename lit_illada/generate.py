"""Generation entry point.

    python -m lit_illada.generate ckpt=runs/<name> prompt="def add(a, b):" sampler=threshold
    python -m lit_illada.generate ckpt=runs/<name> prompts_file=prompts.jsonl sampler.steps=32

Prints each completion with a stats line (NFE, seconds, tokens/s); with ``prompts_file``
writes one JSON line per prompt. Prompts of equal token length share a batch, because the
samplers take rectangular (B, Lp) prompts.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig
from tqdm import tqdm

from lit_illada.builder import CONF_DIR, build_sampler
from lit_illada.checkpoint import LoadedCheckpoint, load_checkpoint
from lit_illada.config_checks import ConfigError, exit_on_bad_input


def read_prompts(cfg: DictConfig) -> list[dict]:
    if (cfg.prompt is None) == (cfg.prompts_file is None):
        raise ConfigError('give exactly one of prompt="..." or prompts_file=<file.jsonl>')
    if cfg.prompt is not None:
        return [{"prompt": str(cfg.prompt)}]
    path = Path(cfg.prompts_file)
    if not path.exists():
        raise ConfigError(f"prompts_file={path}: no such file")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ConfigError(f"prompts_file={path}, line {number}: not JSON ({err.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("prompt"), str):
            raise ConfigError(f'prompts_file={path}, line {number}: expected {{"prompt": "..."}}')
        rows.append(row)
    if not rows:
        raise ConfigError(f"prompts_file={path}: no prompts in the file")
    return rows


def encode_prompt(loaded: LoadedCheckpoint, text: str, add_bos: bool) -> list[int]:
    ids = loaded.tokenizer.encode(text)
    return [loaded.tokenizer.bos_id, *ids] if add_bos else ids


def wants_bos(cfg: DictConfig, loaded: LoadedCheckpoint) -> bool:
    if cfg.add_bos == "auto":
        return loaded.run_config.get("stage_name") == "sft"
    return bool(cfg.add_bos)


def batches_by_length(encoded: list[list[int]], batch_size: int) -> list[list[int]]:
    """Indices grouped by prompt length, each group cut into batches of ``batch_size``."""
    groups: dict[int, list[int]] = defaultdict(list)
    for index, ids in enumerate(encoded):
        groups[len(ids)].append(index)
    return [members[i : i + batch_size] for members in groups.values() for i in range(0, len(members), batch_size)]


def generate_all(cfg: DictConfig, loaded: LoadedCheckpoint, rows: list[dict], device: torch.device) -> list[dict]:
    sampler = build_sampler(cfg, loaded.tokenizer)
    add_bos = wants_bos(cfg, loaded)
    encoded = [encode_prompt(loaded, row["prompt"], add_bos) for row in rows]
    limit = loaded.net.config.max_seq_len
    for row, ids in zip(rows, encoded):
        if not ids:
            raise ConfigError(f"prompt {row['prompt']!r} is empty after tokenization")
        if len(ids) + sampler.gen_length > limit:
            raise ConfigError(
                f"prompt of {len(ids)} tokens + sampler.gen_length={sampler.gen_length} exceeds the "
                f"model's max_seq_len={limit}; shorten the prompt or lower sampler.gen_length"
            )
    generator = torch.Generator(device).manual_seed(cfg.seed)
    results: list[dict | None] = [None] * len(rows)
    batches = batches_by_length(encoded, cfg.batch_size)
    for batch in tqdm(batches, desc="generating", unit="batch", disable=len(batches) < 2, file=sys.stderr):
        prompt = torch.tensor([encoded[i] for i in batch], device=device)
        with torch.no_grad():
            out = loaded.objective.generate(loaded.net, prompt, sampler, generator)
        per_row_seconds = out.seconds / len(batch)
        for row_in_batch, index in enumerate(batch):
            results[index] = {
                **rows[index],
                "completion": loaded.tokenizer.decode(out.generated[row_in_batch].tolist()),
                "nfe": out.nfe,
                "seconds": round(per_row_seconds, 4),
                "batch_seconds": round(out.seconds, 4),
                "tokens_per_s": round(out.tokens_per_second, 2),
                "tokens_per_forward": round(out.tokens_per_forward, 3),
                "sampler": repr(sampler),
            }
    return results


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name} but no CUDA device is visible; use device=cpu")
    return torch.device(name)


def run(cfg: DictConfig) -> list[dict]:
    rows = read_prompts(cfg)
    device = pick_device(cfg.device)
    dtype = getattr(torch, cfg.dtype) if cfg.dtype else None
    try:
        loaded = load_checkpoint(cfg.ckpt, device=device, dtype=dtype)
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(str(err)) from err
    results = generate_all(cfg, loaded, rows, device)
    if cfg.prompts_file is not None:
        output = Path(cfg.output or Path(cfg.prompts_file).with_suffix(".generations.jsonl"))
        output.write_text("".join(json.dumps(row) + "\n" for row in results))
        print(f"wrote {len(results)} generations to {output}")
    else:
        row = results[0]
        print(row["prompt"] + row["completion"])
        print(f"[NFE {row['nfe']}, {row['seconds']:.3f} s, {row['tokens_per_s']:.1f} tok/s, "
              f"{row['tokens_per_forward']:.2f} tok/forward]", file=sys.stderr)
    return results


@hydra.main(config_path=str(CONF_DIR), config_name="generate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    exit_on_bad_input(run, cfg)


if __name__ == "__main__":
    main()
