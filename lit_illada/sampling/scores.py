"""Confidence scores: how sure the model is about each predicted token (higher = surer).

Every sampler takes ``score=<name>`` from ``SCORES``. A score is a function
``(logits, x0, generator) -> (B, L)`` and is computed at every position; the sampler masks
out the positions that cannot be committed.

``probability`` keeps the logits' own dtype because the LLaDA reference does and the
confidence sampler must stay token-identical to it. The other scores have no reference to
match, so they are computed in float32: an entropy summed over a 126k vocabulary in bf16
would be too coarse to rank tokens.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Score = Callable[[torch.Tensor, torch.Tensor, "torch.Generator | None"], torch.Tensor]


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of the predictive distribution at each position, ``(B, L)``.

    ``entr`` treats ``p = 0`` as contributing 0, so tokens suppressed with a ``-inf`` logit
    (EOS suppression, n-gram bans) do not turn the sum into NaN.
    """
    return torch.special.entr(F.softmax(logits.float(), dim=-1)).sum(dim=-1)


def probability(logits: torch.Tensor, x0: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Probability of the predicted token (LLaDA ``low_confidence``)."""
    return F.softmax(logits, dim=-1).gather(-1, x0.unsqueeze(-1)).squeeze(-1)


def margin(logits: torch.Tensor, x0: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Top-1 minus top-2 probability: small when two tokens compete for the position.

    A property of the distribution, not of ``x0``: at temperature > 0 the sampled token need
    not be the top-1, and the margin still measures how settled the position is.
    """
    top = F.softmax(logits.float(), dim=-1).topk(2, dim=-1).values
    return top[..., 0] - top[..., 1]


def negative_entropy(
    logits: torch.Tensor, x0: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """Minus the entropy, so that the least uncertain positions rank first."""
    return -entropy(logits)


def uniform(logits: torch.Tensor, x0: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """A uniform draw per position (LLaDA ``random``): the order-agnostic baseline.

    Drawn with the same shape and generator as the reference so that it stays identical.
    """
    return torch.rand(x0.shape, generator=generator, device=x0.device)


SCORES: dict[str, Score] = {
    "probability": probability,
    "margin": margin,
    "entropy": negative_entropy,
    "random": uniform,
}

UNIT_INTERVAL_SCORES = frozenset({"probability", "margin", "random"})
"""Scores that live in [0, 1], the only ones a probability threshold can be compared with."""
