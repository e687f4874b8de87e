"""Masking scopes: which positions of a batch the forward process may mask.

Each scope maps a batch dict to a bool tensor (B, L). SFT batches carry ``prompt_mask``
(True on BOS + prompt); pretraining batches need only ``input_ids``.
"""

from __future__ import annotations

import torch


class AllPositions:
    """Every token may be masked: pretraining, and iLLaDA SFT (prompt, response and EOS)."""

    def __call__(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.ones_like(batch["input_ids"], dtype=torch.bool)


class ResponseOnly:
    """LLaDA SFT: the prompt is never masked; the answer and its EOS padding are."""

    def __call__(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if "prompt_mask" not in batch:
            raise ValueError(
                "masking=sft_response needs SFT batches with a prompt_mask; use an SFT data "
                "config (data=sft_stdlib or data=sft_jsonl) or masking=pretrain"
            )
        return ~batch["prompt_mask"]
