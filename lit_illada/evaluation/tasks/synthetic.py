"""The synthetic tasks (``lit_illada.data.synthetic``) as evaluation tasks, on a split of theirs.

    tasks=[addition]          generation: the sampler writes the answer (exact match, NFE, ...)
    tasks=[addition_mc]       multiple choice: the answer among near-miss distractors (the scorer)

The same seed and sizes as the training data (``data=addition``) give the same splits, so the
test split is never trained on. ``is_correct`` uses the task's own verifier, not string equality.
"""

from __future__ import annotations

import random

from lit_illada.data.synthetic import SyntheticTask, TaskExample
from lit_illada.evaluation.tasks.choice import ChoiceExample, ChoiceTask
from lit_illada.evaluation.tasks.generation import GenerationTask


class SyntheticGeneration(GenerationTask):
    def __init__(self, task: SyntheticTask, split: str = "test", name: str | None = None, **options) -> None:
        super().__init__(**options)
        self.task, self.split = task, split
        self.name = name or task.name

    def examples(self) -> list[TaskExample]:
        return self.task.split(self.split)[: self.limit]

    def is_correct(self, example: TaskExample, completion: str) -> bool:
        return self.task.check(example, completion)


class SyntheticChoice(ChoiceTask):
    def __init__(self, task: SyntheticTask, split: str = "test", choices: int = 4, name: str | None = None,
                 limit: int = 200, seed: int = 0) -> None:
        super().__init__(limit, seed)
        if choices < 2:
            raise ValueError(f"choices={choices}: need at least 2")
        self.task, self.split, self.choices = task, split, choices
        self.name = name or f"{task.name}_mc"

    def examples(self) -> list[ChoiceExample]:
        rng = random.Random(f"{self.name}:{self.seed}")
        questions = []
        for example in self.task.split(self.split)[: self.limit]:
            options, label = self.task.choices(example, self.choices, rng)
            if example.suffix:  # a reverse (infill) query: score the whole statement
                options = [option + example.suffix for option in options]
            questions.append(ChoiceExample(example.prompt, options, label))
        return questions
