"""Confidence scores: how sure the model is about each predicted token (higher = surer).

A score is a component: a small class whose instances are called as
``score(logits, x0, generator) -> (B, L)``, computed at every position; the sampler masks out
the positions that cannot be committed. A sampler takes one as ``score=`` (any callable of
that signature works). In yaml it is a ``_target_`` of ``conf/sampler/score/``, chosen on the
command line with ``sampler/score=probability|margin|entropy|random``.

``Probability`` keeps the logits' own dtype because the LLaDA reference does and the
confidence sampler must stay token-identical to it. The other scores have no reference to
match, so they are computed in at least float32: an entropy summed over a 126k vocabulary in
bf16 would be too coarse to rank tokens. Every score keeps float64 logits in float64: the
threshold and factor rules pass them so (``policies.ProbabilityRuleSampler``), as Fast-dLLM does.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of the predictive distribution at each position, ``(B, L)``.

    ``entr`` treats ``p = 0`` as contributing 0, so tokens suppressed with a ``-inf`` logit
    (EOS suppression, n-gram bans) do not turn the sum into NaN.
    """
    return torch.special.entr(F.softmax(at_least_float32(logits), dim=-1)).sum(dim=-1)


def at_least_float32(logits: torch.Tensor) -> torch.Tensor:
    """bf16/fp16 logits upcast to float32; float32 and float64 ones left as they are."""
    return logits.to(torch.promote_types(logits.dtype, torch.float32))


class Score(ABC):
    """How positions are ranked: ``(logits (B, L, V), x0 (B, L), generator) -> (B, L)``.

    ``unit_interval`` says whether the values lie in [0, 1], so that a probability threshold
    (``ThresholdSampler``, ``FactorSampler``) can be compared with them.
    """

    unit_interval: bool = False

    @abstractmethod
    def __call__(
        self, logits: torch.Tensor, x0: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Probability(Score):
    """Probability of the predicted token (LLaDA ``low_confidence``)."""

    unit_interval = True

    def __call__(self, logits, x0, generator):
        return F.softmax(logits, dim=-1).gather(-1, x0.unsqueeze(-1)).squeeze(-1)


class Margin(Score):
    """Top-1 minus top-2 probability: small when two tokens compete for the position.

    A property of the distribution, not of ``x0``: at temperature > 0 the sampled token need
    not be the top-1, and the margin still measures how settled the position is.
    """

    unit_interval = True

    def __call__(self, logits, x0, generator):
        top = F.softmax(at_least_float32(logits), dim=-1).topk(2, dim=-1).values
        return top[..., 0] - top[..., 1]


class NegativeEntropy(Score):
    """Minus the entropy, so that the least uncertain positions rank first (``<= 0``)."""

    def __call__(self, logits, x0, generator):
        return -entropy(logits)


class Uniform(Score):
    """A uniform draw per position (LLaDA ``random``): the order-agnostic baseline.

    Drawn with the same shape and generator as the reference so that it stays identical.
    """

    unit_interval = True

    def __call__(self, logits, x0, generator):
        return torch.rand(x0.shape, generator=generator, device=x0.device)
