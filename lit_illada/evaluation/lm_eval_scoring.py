"""Scores and greedy checks of lm-eval's ``(context ids, continuation ids)`` requests.

Seeds. A Monte Carlo scorer's masks for a request come from a seed derived from the request
itself (the run's seed and its token ids), not from a generator shared along the request
stream: a request gets the same score whatever else is in the run, in whatever order, in
whichever data-parallel process (lm-eval shards the documents by rank), and from a cache.

``is_greedy`` is whether greedy decoding of the continuation reproduces it:

* a denoising model (LLaDA's evaluation): the continuation starts fully masked after the
  context; each step reveals the one masked position whose top prediction is the most
  probable, writing that prediction. Greedy reproduces the continuation exactly when every
  revealed prediction is the continuation's token there; while that holds, the partially
  revealed sequence is the continuation's own, so the check reveals true tokens and stops a
  row at its first wrong prediction (at most one forward per continuation token, usually far
  fewer). Guidance (``scoring.cfg_scale``) applies as in scoring;
* a left-to-right model: the argmax at every continuation position is the next token (one forward).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import torch

from lit_illada.evaluation.batch_size import BatchSize
from lit_illada.sampling.sampler import Denoiser
from lit_illada.scoring import Candidate, Scorer, equal_length_groups

Pair = tuple[Sequence[int], Sequence[int]]


def request_seed(seed: int, context: Sequence[int], continuation: Sequence[int]) -> int:
    """A 62-bit seed of the run's seed and the request's ids (the scorers draw seeds below 2**62)."""
    digest = hashlib.blake2b(repr((seed, list(context), list(continuation))).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 2


def candidates(pairs: Sequence[Pair], scorer: Scorer, seed: int, device: torch.device) -> list[Candidate]:
    return [
        Candidate(
            torch.tensor(list(context), dtype=torch.long, device=device),
            torch.tensor(list(continuation), dtype=torch.long, device=device),
            request_seed(seed, context, continuation) if scorer.stochastic else None,
        )
        for context, continuation in pairs
    ]


def score(scorer: Scorer, denoiser: Denoiser, items: list[Candidate], batch: BatchSize) -> list[float]:
    """The scorer's score of each candidate, ``batch`` candidates (or Monte Carlo rows) per forward."""

    def attempt(group: list[Candidate]):
        def run(size: int) -> list[float]:
            scorer.batch_size = size
            return scorer.score_group(denoiser, group)

        return batch.run(run)

    return _per_group(items, attempt)


def greedy(
    scorer: Scorer, denoiser: Denoiser, items: list[Candidate], causal: bool, batch: BatchSize
) -> list[bool]:
    """Whether greedy decoding reproduces each candidate's continuation (see the module docstring)."""
    check = _left_to_right_greedy if causal else _masked_greedy

    def attempt(group: list[Candidate]):
        def run(size: int) -> list[bool]:
            return [
                ok
                for start in range(0, len(group), size)
                for ok in check(scorer, denoiser, group[start : start + size])
            ]

        return batch.run(run)

    return _per_group(items, attempt)


def _per_group(items: list[Candidate], attempt) -> list:
    """``attempt`` on each group of equal total length (rows stack without padding), results in order."""
    results: list = [math.nan] * len(items)
    with torch.no_grad():
        for indices in equal_length_groups(items):
            for index, value in zip(indices, attempt([items[i] for i in indices]), strict=True):
                results[index] = value
    return results


def _masked_greedy(scorer: Scorer, denoiser: Denoiser, batch: list[Candidate]) -> list[bool]:
    targets = torch.stack([c.ids for c in batch])
    positions = torch.arange(targets.shape[1], device=targets.device)
    lengths = torch.tensor([c.context_length for c in batch], device=targets.device)
    context = positions < lengths.unsqueeze(1)
    hidden = ~context
    x = targets.masked_fill(hidden, scorer.mask_id)
    right = torch.ones(len(batch), dtype=torch.bool, device=targets.device)
    while True:
        active = (hidden.any(dim=1) & right).nonzero(as_tuple=True)[0]
        if not active.numel():
            return right.tolist()
        select = hidden[active]
        best, prediction = scorer.log_probs(denoiser, x[active], context[active], select).max(dim=-1)
        confidence = torch.full(select.shape, -torch.inf, dtype=best.dtype, device=x.device)
        confidence[select] = best
        predicted = torch.zeros(select.shape, dtype=torch.long, device=x.device)
        predicted[select] = prediction
        chosen = confidence.argmax(dim=1)  # the most confident masked position (leftmost on ties)
        rows = torch.arange(active.numel(), device=x.device)
        right[active] = predicted[rows, chosen] == targets[active, chosen]
        x[active, chosen] = targets[active, chosen]
        hidden[active, chosen] = False


def _left_to_right_greedy(scorer: Scorer, denoiser: Denoiser, batch: list[Candidate]) -> list[bool]:
    ids = torch.stack([c.ids for c in batch])
    positions = torch.arange(ids.shape[1], device=ids.device)
    lengths = torch.tensor([c.context_length for c in batch], device=ids.device)
    # Position p predicts token p + 1: the positions from the context's last token to the second-to-last.
    select = (positions + 1 >= lengths.unsqueeze(1)) & (positions < ids.shape[1] - 1)
    prediction = scorer.log_probs(denoiser, ids, positions < lengths.unsqueeze(1), select).argmax(dim=-1)
    following = torch.roll(ids, shifts=-1, dims=1)[select]
    wrong = torch.zeros(len(batch), dtype=torch.long, device=ids.device)
    wrong.index_add_(0, select.nonzero(as_tuple=True)[0], (prediction != following).long())
    return (wrong == 0).tolist()
