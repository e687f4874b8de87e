"""What a task needs from a checkpoint, and the task contract."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import torch

from lit_illada.data import PyStdlibCorpus
from lit_illada.sampling.decoding import Decoding


@dataclass
class EvalModel:
    """A loaded model with the sampler and scorer chosen for this evaluation."""

    net: torch.nn.Module
    tokenizer: object
    decoding: Decoding  # denoising or left to right: how this model generates
    configured_sampler: object | None  # None: built from ``samplers`` on first use
    scorer: object
    add_bos: bool  # SFT checkpoints saw BOS before every prompt
    # The sampler for answers of a given length (None: as configured). Generation tasks size it
    # to their answers; without it, the configured sampler serves every length.
    samplers: Callable[[int | None], object] | None = None

    @property
    def sampler(self):
        """The sampler as configured (tasks with their own answer lengths use ``sampler_for``)."""
        if self.configured_sampler is None:
            self.configured_sampler = self.samplers(None)
        return self.configured_sampler

    def sampler_for(self, length: int):
        return self.samplers(length) if self.samplers is not None else self.sampler

    def denoiser(self, ids: torch.Tensor) -> torch.Tensor:
        return self.net(ids, causal=self.decoding.causal)

    def generate(self, prompt: torch.Tensor, generator: torch.Generator | None = None):
        return self.decoding.generate(self.net, prompt, self.sampler, generator)

    def encode_prompt(self, text: str) -> list[int]:
        ids = self.tokenizer.encode(text)
        return [self.tokenizer.bos_id, *ids] if self.add_bos else ids

    @property
    def max_seq_len(self) -> int:
        return self.net.config.max_seq_len


class Task(ABC):
    """One evaluation: builds its examples from held-out stdlib files, returns metrics."""

    name: str

    def __init__(self, limit: int = 100, seed: int = 0) -> None:
        if limit < 1:
            raise ValueError(f"task.limit={limit}: must be >= 1")
        self.limit, self.seed = limit, seed

    @staticmethod
    def held_out_files() -> list[str]:
        """Test-split stdlib sources: never seen in training (train uses the train split)."""
        return list(PyStdlibCorpus().documents("test"))

    @abstractmethod
    def run(self, model: EvalModel) -> dict:
        """Metrics of this task, e.g. {"accuracy": 0.41, "n": 100}."""
