"""Multiple-choice tasks: a context and a few candidate continuations, one right.

The configured scorer scores each candidate; the highest score is the model's pick (ties share
the credit). Reports accuracy with its Wilson 95% interval, chance, and the cost: sequence
forwards (rows through the network) per question, which is what separates the scorers
(likelihood: ``mc_num`` rows per candidate; confidence: one row per continuation token).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from lit_illada.evaluation.metrics import rate_with_interval
from lit_illada.evaluation.tasks.base import EvalModel, Task


@dataclass(frozen=True)
class ChoiceExample:
    context: str
    choices: list[str]
    label: int


def credit(scores: Sequence[float], answer: int) -> float:
    """1/k when the answer is among the k tied best scores, else 0; a nan score is never picked."""
    values = [float(score) for score in scores]
    if not 0 <= answer < len(values):
        raise ValueError(f"answer {answer} is not one of {len(values)} options")
    valid = [v for v in values if not math.isnan(v)]
    if not valid:
        return 0.0
    picked = [i for i, v in enumerate(values) if v == max(valid)]
    return 1.0 / len(picked) if answer in picked else 0.0


class CountingDenoiser:
    """A denoiser that counts the sequences (rows) it was run on."""

    def __init__(self, denoiser) -> None:
        self.denoiser, self.rows = denoiser, 0

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        self.rows += ids.shape[0]
        return self.denoiser(ids)


class ChoiceTask(Task):
    @abstractmethod
    def examples(self) -> list[ChoiceExample]:
        """The questions, at most ``limit`` of them."""

    def run(self, model: EvalModel) -> dict:
        examples = self.examples()[: self.limit]
        if not examples:
            raise ValueError(f"{self.name}: no questions")
        pairs = [(model.encode_prompt(e.context), model.tokenizer.encode(choice)) for e in examples for choice in e.choices]
        counting = CountingDenoiser(model.denoiser)
        scores = model.scorer.score_many(counting, pairs, generator=torch.Generator().manual_seed(self.seed))
        credits, at = [], 0
        for example in examples:
            credits.append(credit(scores[at : at + len(example.choices)], example.label))
            at += len(example.choices)
        n = len(examples)
        return {
            **rate_with_interval("accuracy", math.fsum(credits), n),
            "chance": sum(1 / len(e.choices) for e in examples) / n,
            "forwards_per_question": counting.rows / n,
            "n": n,
        }
