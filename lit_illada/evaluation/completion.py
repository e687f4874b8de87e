"""Completing prompts with a loaded model: encoding (BOS for SFT models), length checks, batching
by prompt length and the ``Completer`` that ``generate`` and the lm-eval adapter share."""

from __future__ import annotations

from collections import defaultdict

import torch
from omegaconf import DictConfig

from lit_illada.checkpoints.loader import LoadedModel
from lit_illada.config.build import build_sampler
from lit_illada.config.errors import ConfigError


def encode_prompt(loaded: LoadedModel, text: str, add_bos: bool) -> list[int]:
    ids = loaded.tokenizer.encode(text)
    return [loaded.tokenizer.bos_id, *ids] if add_bos else ids


def wants_bos(cfg: DictConfig, loaded: LoadedModel) -> bool:
    if cfg.add_bos == "auto":
        return loaded.run_config.get("stage_name") == "sft"
    return bool(cfg.add_bos)


def check_prompt(ids: list[int], text: str, gen_length: int, limit: int, where: str = "") -> None:
    if not ids:
        raise ConfigError(f"{where}prompt {text!r} is empty after tokenization")
    if len(ids) + gen_length > limit:
        raise ConfigError(
            f"{where}prompt of {len(ids)} tokens + sampler.gen_length={gen_length} exceeds the "
            f"model's max_seq_len={limit}; shorten the prompt or lower sampler.gen_length"
        )


def batches_by_length(encoded: list[list[int]], batch_size: int) -> list[list[int]]:
    """Indices grouped by prompt length, each group cut into batches of ``batch_size``."""
    groups: dict[int, list[int]] = defaultdict(list)
    for index, ids in enumerate(encoded):
        groups[len(ids)].append(index)
    return [
        members[i : i + batch_size] for members in groups.values() for i in range(0, len(members), batch_size)
    ]


class Completer:
    """The checkpoint, sampler and random generator that every batch of a command shares."""

    def __init__(self, cfg: DictConfig, loaded: LoadedModel, device: torch.device) -> None:
        self.loaded = loaded
        self.sampler = build_sampler(cfg, loaded.tokenizer)
        self.add_bos = wants_bos(cfg, loaded)
        self.limit = loaded.net.config.max_seq_len
        self.device = device
        self.random = torch.Generator(device).manual_seed(cfg.seed)

    def encode(self, row: dict, where: str = "") -> list[int]:
        ids = encode_prompt(self.loaded, row["prompt"], self.add_bos)
        check_prompt(ids, row["prompt"], self.sampler.gen_length, self.limit, where)
        return ids

    def complete(self, rows: list[dict], encoded: list[list[int]]) -> list[dict]:
        """``rows`` (of equal token length) with their completion and the sampling stats."""
        prompt = torch.tensor(encoded, device=self.device)
        with torch.no_grad():
            out = self.loaded.decoding.generate(self.loaded.net, prompt, self.sampler, self.random)
        return [
            {
                **row,
                "completion": self.loaded.tokenizer.decode(out.generated[i].tolist()),
                "nfe": out.nfe,
                "seconds": round(out.seconds / len(rows), 4),
                "batch_seconds": round(out.seconds, 4),
                "tokens_per_s": round(out.tokens_per_second, 2),
                "tokens_per_forward": round(out.tokens_per_forward, 3),
                "sampler": repr(self.sampler),
            }
            for i, row in enumerate(rows)
        ]


