"""Remasking policies: which predicted tokens are trusted first.

Each policy is a ``Sampler`` subclass that overrides one hook. Later policies (margin,
entropy, threshold, ...) join here or in a sibling module, each with a yaml in
``conf/sampler/``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lit_illada.sampling.sampler import Sampler


class ConfidenceSampler(Sampler):
    """LLaDA ``low_confidence`` remasking: commit the tokens the model is surest about.

    Confidence is the softmax probability of the predicted token under the unnoised
    (guided) logits, in the logits' own dtype as in the reference. Draws no random numbers
    at temperature 0, so the output is deterministic.
    """

    def confidence(
        self, logits: torch.Tensor, x0: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        return F.softmax(logits, dim=-1).gather(-1, x0.unsqueeze(-1)).squeeze(-1)


class RandomSampler(Sampler):
    """LLaDA ``random`` remasking: commit positions in a uniformly random order.

    The scheduled count per step is kept; only the choice of positions is random. Useful
    as the baseline that shows what confidence ordering buys.
    """

    def confidence(
        self, logits: torch.Tensor, x0: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        return torch.rand(x0.shape, generator=generator, device=x0.device)
