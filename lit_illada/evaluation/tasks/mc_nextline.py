"""mc_nextline: given the preceding lines of a file, pick the true next line among four."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import torch

from lit_illada.evaluation.metrics import rate_with_interval
from lit_illada.evaluation.tasks.base import EvalModel, Task


def score_example(scores: Sequence[float], answer: int) -> float:
    """Credit for one question: the options with the highest score are the model's picks; the
    credit is 1/k when the answer is among k tied best options, else 0.0 (so 1.0 for a unique
    right pick; a tie is an even random choice, and never favours one position). A nan score is
    never picked; when every score is nan the model picked nothing: 0.0."""
    values = [float(score) for score in scores]
    if not 0 <= answer < len(values):
        raise ValueError(f"mc_nextline: answer {answer} is not one of {len(values)} options")
    valid = [v for v in values if not math.isnan(v)]
    if not valid:
        return 0.0
    best = max(valid)
    picked = [i for i, v in enumerate(values) if v == best]
    return 1.0 / len(picked) if answer in picked else 0.0


def summarize(credits: list[float], choices: int) -> dict:
    """``accuracy``: mean credit over questions, with its Wilson 95% interval over questions;
    ``chance``: 1 / choices."""
    n = len(credits)
    if n == 0:
        raise ValueError("mc_nextline: no scored question")
    return {**rate_with_interval("accuracy", math.fsum(credits), n), "n": n, "chance": 1 / choices}


class MCNextLine(Task):
    """Distractors are real lines from other files with a similar length, so length alone
    does not give the answer away. Scored with the configured scorer (likelihood or
    confidence; exact likelihood for an AR model)."""

    name = "mc_nextline"

    def __init__(self, limit: int = 100, seed: int = 0, context_lines: int = 6, choices: int = 4) -> None:
        super().__init__(limit, seed)
        self.context_lines, self.choices = context_lines, choices

    def examples(self) -> list[tuple[str, list[str], int]]:
        rng = random.Random(self.seed)
        files = [text.splitlines() for text in self.held_out_files()]
        pool = [(i, line) for i, lines in enumerate(files) for line in lines if len(line.strip()) >= 8]
        by_length: dict[int, list[tuple[int, str]]] = {}
        for file_index, line in pool:
            by_length.setdefault(len(line) // 8, []).append((file_index, line))
        examples = []
        for _ in range(self.limit * 20):
            if len(examples) == self.limit:
                break
            file_index = rng.randrange(len(files))
            lines = files[file_index]
            if len(lines) <= self.context_lines:
                continue
            at = rng.randrange(self.context_lines, len(lines))
            answer = lines[at]
            similar = by_length.get(len(answer) // 8, [])
            bucket = [line for i, line in similar if i != file_index and line != answer]
            if len(answer.strip()) < 8 or len(bucket) < self.choices - 1:
                continue
            options = [answer, *rng.sample(bucket, self.choices - 1)]
            rng.shuffle(options)
            context = "\n".join(lines[at - self.context_lines : at]) + "\n"
            examples.append((context, options, options.index(answer)))
        return examples

    def run(self, model: EvalModel) -> dict:
        examples = self.examples()
        pairs = [(model.encode_prompt(context), model.tokenizer.encode(option))
                 for context, options, _ in examples for option in options]
        generator = torch.Generator().manual_seed(self.seed)
        scores = model.scorer.score_many(model.denoiser, pairs, generator=generator)
        credits = [
            score_example(scores[index * self.choices : (index + 1) * self.choices], answer)
            for index, (_, _, answer) in enumerate(examples)
        ]
        return summarize(credits, self.choices)
