"""What a sampler hands back: the tokens plus the statistics that speed studies compare."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class SampleResult:
    """Output of one ``Sampler.generate`` call.

    Attributes:
        tokens: ``(B, Lp + gen_length)`` ids, the prompt followed by the generated tokens.
            Variable-length generation stops early; its rows are EOS from their first EOS
            on, padded with EOS to ``gen_length`` so that the tensor stays rectangular.
        prompt_length: ``Lp``; ``generated`` slices the answer off with it.
        nfe: number of denoiser calls. With classifier-free guidance the conditional and
            unconditional inputs go through the denoiser as one doubled batch, and that
            call counts as **one** function evaluation (it is one forward pass in wall
            clock terms; the FLOPs double, NFE does not).
        committed_per_step: one entry per denoiser call: the number of positions written
            at that step, **summed over the batch rows**. Adaptive policies write a varying
            number; a row that has finished its block (or its answer) adds 0.
        seconds: wall-clock duration of the whole call (CUDA is synchronised first).
    """

    tokens: torch.Tensor
    prompt_length: int
    nfe: int
    committed_per_step: list[int]
    seconds: float

    @property
    def generated(self) -> torch.Tensor:
        """The ``(B, gen_length)`` answer, without the prompt."""
        return self.tokens[:, self.prompt_length :]

    @property
    def batch_size(self) -> int:
        return self.tokens.shape[0]

    @property
    def generated_tokens(self) -> int:
        """Tokens committed across the whole batch."""
        return sum(self.committed_per_step)

    @property
    def tokens_per_second(self) -> float:
        """Throughput: tokens committed across the batch per wall-clock second."""
        return self.generated_tokens / self.seconds if self.seconds > 0 else float("inf")

    @property
    def tokens_per_forward(self) -> float:
        """Decoding parallelism: tokens committed **per sequence** per denoiser call.

        Divided by the batch size so that the number does not grow with the batch and can
        be compared with single-sequence figures (e.g. Fast-dLLM's tokens per forward).
        """
        return self.generated_tokens / (self.batch_size * self.nfe) if self.nfe else 0.0
