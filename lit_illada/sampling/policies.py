"""Commit rules: how many of the proposed tokens are trusted at each step.

* ``ConfidenceSampler``: LLaDA's fixed schedule, the same number per step, best-scored first.
* ``AdaptiveSampler`` subclasses commit a data-dependent number per step and loop until
  the block is full: ``ThresholdSampler`` and ``FactorSampler`` (Fast-dLLM, scores in
  float64) and ``EntropyBoundedSampler`` (EB). Each one's rule is a pure function of the ranked
  candidates, exported for tests and analysis.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import torch

from lit_illada.sampling.sampler import (
    Proposal,
    Sampler,
    SamplingRun,
    nearby,
    require_int,
    require_number,
)
from lit_illada.sampling.scores import NegativeEntropy, Score, entropy

# ------------------------------------------------------------------------ fixed schedule


def transfer_schedule(masked: torch.Tensor, steps: int) -> list[list[int]]:
    """Tokens to commit at each of ``steps`` steps, per row, for a block's masked positions.

    A row with ``m`` masked positions commits ``m // steps`` per step and one more in the
    first ``m % steps`` steps (LLaDA's ``get_num_transfer_tokens``). Returned as Python
    ints, computed once per block, so the step loop needs no device synchronisation.
    """
    counts = masked.sum(dim=1).tolist()
    return [[m // steps + (1 if step < m % steps else 0) for step in range(steps)] for m in counts]


def top_k_per_row(confidence: torch.Tensor, counts: list[int]) -> torch.Tensor:
    """Boolean ``(B, L)`` mask of the ``counts[j]`` most confident positions of each row.

    One ``torch.topk`` per row, as in the reference, so that ties break identically.
    """
    chosen = torch.zeros_like(confidence, dtype=torch.bool)
    for row, k in enumerate(counts):
        if k > 0:
            chosen[row, torch.topk(confidence[row], k=k).indices] = True
    return chosen


class ConfidenceSampler(Sampler):
    """LLaDA's sampler: ``steps`` denoiser calls, a fixed number of commits per step.

    Each block gets ``steps / num_blocks`` steps; the count per step is fixed from the
    masked count at the block start, and each step commits the best-scored candidates.
    With ``score=Probability()`` this is LLaDA's ``low_confidence`` remasking and with
    ``score=Uniform()`` its ``random`` remasking, both token-identical to the reference; the
    other scores are drop-in alternatives. NFE is exactly ``steps``.

    Args:
        steps: denoiser calls in total, split evenly over the blocks: a multiple of
            ``gen_length / block_length``, at most ``gen_length``.
        **knobs: the ``Sampler`` knobs.
    """

    KNOBS = Sampler.KNOBS + ("steps",)

    def __init__(self, *, steps: int, **knobs: Any) -> None:
        super().__init__(**knobs)
        require_int("steps", steps, minimum=1)
        self.steps = steps
        gen_length, num_blocks = self.gen_length, self.num_blocks
        if steps > gen_length:
            raise ValueError(
                f"sampler.steps={steps} exceeds sampler.gen_length={gen_length}; extra steps "
                f"would commit nothing. Allowed: at most {gen_length}"
            )
        if steps % num_blocks != 0:
            valid = list(range(num_blocks, gen_length + 1, num_blocks))
            raise ValueError(
                f"sampler.steps={steps} must be a multiple of the number of blocks "
                f"(gen_length / block_length = {num_blocks}) so every block gets the same "
                f"steps; allowed: multiples of {num_blocks} up to {gen_length}, e.g. "
                f"{nearby(valid, steps)}"
            )

    @property
    def steps_per_block(self) -> int:
        return self.steps // self.num_blocks

    def decode_block(self, run: SamplingRun, start: int, end: int) -> None:
        schedule = transfer_schedule(run.x[:, start:end] == self.mask_id, self.steps_per_block)
        for step in range(self.steps_per_block):
            proposal = self.propose(run, end)
            counts = [row[step] for row in schedule]
            self.commit(run, proposal.tokens, top_k_per_row(proposal.confidence, counts), sum(counts))


# ------------------------------------------------------------------------- adaptive rules


def longest_prefix(accepted: torch.Tensor) -> torch.Tensor:
    """Per row, how many leading entries of the boolean ``(B, N)`` tensor are all true."""
    return accepted.long().cumprod(dim=1).sum(dim=1)


def threshold_count(ranked: torch.Tensor, threshold: float) -> torch.Tensor:
    """How many of the descending ``ranked`` scores reach ``threshold`` (Fast-dLLM)."""
    return (ranked >= threshold).sum(dim=1)


def factor_count(ranked: torch.Tensor, factor: float) -> torch.Tensor:
    """Longest prefix of the descending ``ranked`` scores whose i-th (1-based) is >= 1 - f/(i+1).

    Fast-dLLM's factor rule: the more tokens accepted together, the surer each must be,
    because their independent errors add up.
    """
    i = torch.arange(1, ranked.shape[1] + 1, device=ranked.device)
    return longest_prefix(ranked >= 1 - factor / (i + 1))


def entropy_bound_count(entropies: torch.Tensor, gamma: float) -> torch.Tensor:
    """Longest prefix of ``entropies`` (in commit order) with sum minus max <= ``gamma``.

    EB-sampler's bound: sum minus max of the marginal entropies bounds the dependence
    between the accepted tokens, so they can be sampled independently with small error.
    The left side never decreases along the prefix, so the largest such set is a prefix.
    """
    return longest_prefix(entropies.cumsum(dim=1) - entropies.cummax(dim=1).values <= gamma)


class AdaptiveSampler(Sampler):
    """Commit as many tokens per step as a rule accepts, and loop until the block is full.

    Each step ranks every row's candidates by score (best first, ties to the left) and asks
    ``accept`` how many leading ones to commit. A row whose block still has masks commits
    at least its top candidate, so a block takes at most ``block_length`` steps; a row whose
    block is done commits nothing and only rides along in the batched denoiser call.
    There is no ``steps`` knob: the number of steps, hence NFE, depends on the data.
    ``committed_per_step`` sums the rows' counts.
    """

    def decode_block(self, run: SamplingRun, start: int, end: int) -> None:
        for _ in range(self.block_length):  # a bound the loop reaches only if [MASK] is predicted
            if not (run.x[:, start:end] == self.mask_id).any():
                return
            proposal = self.propose(run, end)
            ranking = proposal.confidence.sort(dim=1, descending=True, stable=True)
            counts = self.accept(proposal, ranking).clamp(min=1).minimum(proposal.candidates.sum(dim=1))
            in_prefix = torch.arange(run.x.shape[1], device=run.x.device) < counts[:, None]
            chosen = torch.zeros_like(in_prefix).scatter(1, ranking.indices, in_prefix)
            self.commit(run, proposal.tokens, chosen, int(counts.sum()))

    @abstractmethod
    def accept(self, proposal: Proposal, ranking: torch.return_types.sort) -> torch.Tensor:
        """``(B,)`` leading entries of ``ranking`` (values, indices) to commit, before the
        at-least-one floor and the candidate cap that ``decode_block`` applies."""


class ProbabilityRuleSampler(AdaptiveSampler):
    """An adaptive rule that compares scores with fixed probabilities (threshold, factor).

    The score is computed from float64 logits, as in Fast-dLLM: a bf16 softmax keeps 8
    significant bits, so near 0.9 it rounds p to a multiple of 1/256, and the threshold with
    it, flipping decisions near the threshold (about 1% of p >= 0.9 on a 126k vocabulary, as
    reported). The fixed schedule (``ConfidenceSampler``) only ranks, and keeps the logits'
    dtype to stay token-identical to LLaDA.
    """

    def confidence(
        self, logits: torch.Tensor, x0: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        return self.score(logits.to(torch.float64), x0, generator)


class ThresholdSampler(ProbabilityRuleSampler):
    """Fast-dLLM parallel decoding: commit every candidate whose score is >= ``threshold``.

    Args:
        threshold: tau in (0, 1]; 0.9 gives about 3 tokens per forward on GSM8K with
            LLaDA at unchanged accuracy. At 1 only scores of exactly 1.0 pass, and softmax
            saturates (in float64 a lead of about 37 over a lone rival gives p == 1.0), so
            several positions may still commit in one step: tau = 1 is not the confidence
            sampler with ``steps == gen_length``.
        **knobs: the ``Sampler`` knobs; ``score`` must lie in [0, 1] to be comparable
            (``unit_interval``: ``Probability``, ``Margin``, ``Uniform``).
    """

    KNOBS = Sampler.KNOBS + ("threshold",)

    def __init__(self, *, threshold: float = 0.9, **knobs: Any) -> None:
        super().__init__(**knobs)
        require_number("threshold", threshold)
        if not 0 < threshold <= 1:
            raise ValueError(f"sampler.threshold={threshold}: must be in (0, 1]")
        require_unit_interval_score(self.score, type(self).__name__, "threshold")
        self.threshold = float(threshold)

    def accept(self, proposal: Proposal, ranking: torch.return_types.sort) -> torch.Tensor:
        return threshold_count(ranking.values, self.threshold)


class FactorSampler(ProbabilityRuleSampler):
    """Fast-dLLM's factor rule: accept the longest ranked prefix with score_i >= 1 - f/(i+1).

    Args:
        factor: f > 0; larger accepts more tokens per step.
        **knobs: the ``Sampler`` knobs; ``score`` must lie in [0, 1] to be comparable
            (``unit_interval``: ``Probability``, ``Margin``, ``Uniform``).
    """

    KNOBS = Sampler.KNOBS + ("factor",)

    def __init__(self, *, factor: float = 1.0, **knobs: Any) -> None:
        super().__init__(**knobs)
        require_number("factor", factor)
        if not factor > 0:
            raise ValueError(f"sampler.factor={factor}: must be > 0")
        require_unit_interval_score(self.score, type(self).__name__, "factor")
        self.factor = float(factor)

    def accept(self, proposal: Proposal, ranking: torch.return_types.sort) -> torch.Tensor:
        return factor_count(ranking.values, self.factor)


class EntropyBoundedSampler(AdaptiveSampler):
    """EB-sampler: accept the largest ranked prefix whose entropy sum minus max is <= gamma.

    Candidates are ranked by ``score`` (default ``NegativeEntropy()``: lowest entropy first)
    and the bound is on their predictive entropies (nats), as in Ben-Hamu et al. (2025).

    Args:
        gamma: error tolerance >= 0; 0 accepts one token per step unless the others are
            certain, larger accepts more.
        **knobs: the ``Sampler`` knobs.
    """

    KNOBS = Sampler.KNOBS + ("gamma",)

    def __init__(self, *, gamma: float = 0.1, score: Score | None = None, **knobs: Any) -> None:
        super().__init__(score=NegativeEntropy() if score is None else score, **knobs)
        require_number("gamma", gamma, minimum=0)
        self.gamma = float(gamma)

    def accept(self, proposal: Proposal, ranking: torch.return_types.sort) -> torch.Tensor:
        return entropy_bound_count(entropy(proposal.logits).gather(1, ranking.indices), self.gamma)


def require_unit_interval_score(score: Score, policy: str, knob: str) -> None:
    """The score must declare ``unit_interval = True`` to be compared with a probability."""
    if not getattr(score, "unit_interval", False):
        raise ValueError(
            f"sampler.score={score!r} does not lie in [0, 1], so {policy} cannot compare it with "
            f"sampler.{knob}; choose a score in [0, 1]: sampler/score=probability, margin or random"
        )
