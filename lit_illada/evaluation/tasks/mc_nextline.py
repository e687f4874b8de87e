"""mc_nextline: given the preceding lines of a file, pick the true next line among four."""

from __future__ import annotations

import random

import torch

from lit_illada.evaluation.tasks.base import EvalModel, Task


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
            bucket = [line for i, line in by_length.get(len(answer) // 8, []) if i != file_index and line != answer]
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
        scores = model.scorer.score_many(model.denoiser, pairs, generator=torch.Generator().manual_seed(self.seed))
        correct = 0
        for index, (_, options, answer) in enumerate(examples):
            row = scores[index * self.choices : (index + 1) * self.choices]
            correct += int(max(range(len(options)), key=row.__getitem__) == answer)
        return {"accuracy": correct / len(examples), "n": len(examples), "chance": 1 / self.choices}
