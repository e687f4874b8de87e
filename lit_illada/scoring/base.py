"""Multiple-choice scorers: how much a masked diffusion LM likes a continuation of a context.

A scorer turns ``(denoiser, context, continuation)`` into one float, higher meaning more
likely; a multiple-choice task picks the candidate with the highest score. Two scorers:

* ``LikelihoodScorer``: LLaDA's Monte Carlo estimate of the ELBO (a lower bound on
  ``log p(continuation | context)``), with the masked-token count stratified per mini-batch;
* ``ConfidenceScorer``: iLLaDA's greedy reveal, which scores the continuation along the
  order the model itself would have decoded it. Deterministic, one pass, not a likelihood.

Both share what does not depend on the method (input checks, grouping of candidates into
batches, guidance, log-softmax precision) in the base class ``Scorer``.

Batching. The denoiser has no attention mask and attends bidirectionally, so padding would
change its predictions. ``score_many`` therefore batches only candidates whose context plus
continuation have the same total length; each such group is scored without padding.

Randomness. A scorer that draws random numbers draws one seed per pair, in pair order, from
the caller's generator, and every random draw for that pair comes from a CPU generator
seeded with it. So ``score_many(pairs, g)`` equals ``[score(*p, g) for p in pairs]`` with a
generator in the same state (batching does not change which masks a pair gets), and a seed
gives the same masks on every device.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch

from lit_illada.sampling.sampler import Denoiser

Ids = torch.Tensor | Sequence[int]
"""Token ids of one sequence: a 1-D integer tensor or a list of ints."""

Pair = tuple[Ids, Ids]
"""``(context_ids, continuation_ids)``."""

LOG_PROB_DTYPE = torch.float32
"""Log-softmax (and the guidance combination before it) runs in this precision, whatever the
denoiser returns: bf16 logits lose the small differences between candidates."""


# ------------------------------------------------------------------------------ candidates


@dataclass(frozen=True)
class Candidate:
    """One validated ``(context, continuation)`` pair as 1-D long tensors on the scoring device.

    ``seed`` seeds every random draw made for this pair (``None`` for deterministic scorers).
    """

    context: torch.Tensor
    continuation: torch.Tensor
    seed: int | None = None

    @property
    def ids(self) -> torch.Tensor:
        return torch.cat([self.context, self.continuation])

    @property
    def context_length(self) -> int:
        return self.context.numel()

    @property
    def continuation_length(self) -> int:
        return self.continuation.numel()

    @property
    def total_length(self) -> int:
        return self.context_length + self.continuation_length


def equal_length_groups(candidates: Sequence[Candidate]) -> list[list[int]]:
    """Indices of ``candidates`` grouped by total length, groups in order of first appearance.

    Rows of one group stack into a batch without padding, which a bidirectional denoiser
    without an attention mask would see.
    """
    groups: dict[int, list[int]] = {}
    for index, candidate in enumerate(candidates):
        groups.setdefault(candidate.total_length, []).append(index)
    return list(groups.values())


# ------------------------------------------------------------------------------ base class


class Scorer(ABC):
    """Scores continuations of contexts under a denoiser; higher means more likely.

    Args:
        mask_id: id of the [MASK] token. Must not occur in contexts or continuations.
        cfg_scale: classifier-free guidance strength; 0 turns guidance off. With guidance the
            logits are ``uncond + (cfg_scale + 1) * (cond - uncond)``, where the
            unconditional input is the same sequence with every context position masked (as
            in the sampler); both copies go through the denoiser as one doubled batch.
    """

    stochastic: ClassVar[bool] = False
    """Whether scoring draws random numbers, and so takes one seed per pair from the generator."""

    def __init__(self, *, mask_id: int, cfg_scale: float = 0.0) -> None:
        _require_int("mask_id", mask_id, minimum=0)
        _require_number("cfg_scale", cfg_scale)
        if cfg_scale < 0:
            raise ValueError(f"scoring.cfg_scale={cfg_scale}: must be >= 0 (0 turns guidance off)")
        self.mask_id = mask_id
        self.cfg_scale = float(cfg_scale)

    def __repr__(self) -> str:
        knobs = ", ".join(f"{key}={value}" for key, value in vars(self).items())
        return f"{type(self).__name__}({knobs})"

    # ------------------------------------------------------------------- public entry points

    def score(
        self,
        denoiser: Denoiser,
        context_ids: Ids,
        continuation_ids: Ids,
        generator: torch.Generator | None = None,
    ) -> float:
        """Score of ``continuation_ids`` after ``context_ids``: a log-probability surrogate.

        Args:
            denoiser: ids ``(B, L)`` -> logits ``(B, L, V)``; called under ``no_grad``.
            context_ids: ``(Lc,)`` ids, never masked; may be empty.
            continuation_ids: ``(Lx,)`` ids, ``Lx >= 1``.
            generator: source of the pair's seed (``None``: torch's global RNG). Deterministic
                scorers leave it untouched.
        """
        return self.score_many(denoiser, [(context_ids, continuation_ids)], generator)[0]

    def score_many(
        self, denoiser: Denoiser, pairs: Sequence[Pair], generator: torch.Generator | None = None
    ) -> list[float]:
        """Scores of many ``(context, continuation)`` pairs, in order, batched where possible.

        Equal to calling ``score`` on each pair in turn with the same generator (up to the
        float rounding of a differently sized batch). Ids given as tensors keep their device;
        lists go to the device of the first tensor among the pairs, or the CPU.
        """
        device = _device_of(pairs)
        seeds = _pair_seeds(len(pairs), generator) if self.stochastic else [None] * len(pairs)
        candidates = [
            self._candidate(index, context, continuation, device, seed)
            for index, ((context, continuation), seed) in enumerate(zip(pairs, seeds, strict=True))
        ]
        scores = [math.nan] * len(candidates)
        with torch.no_grad():
            for indices in equal_length_groups(candidates):
                values = self.score_group(denoiser, [candidates[i] for i in indices])
                for index, value in zip(indices, values, strict=True):
                    scores[index] = value
        return scores

    # ----------------------------------------------------------------------------- hooks

    @abstractmethod
    def score_group(self, denoiser: Denoiser, group: list[Candidate]) -> list[float]:
        """Scores of candidates that share one total length, so their ids stack unpadded."""

    # -------------------------------------------------------------------- building blocks

    def log_probs(
        self, denoiser: Denoiser, ids: torch.Tensor, context: torch.Tensor, select: torch.Tensor
    ) -> torch.Tensor:
        """Log-probabilities ``(M, V)`` at the ``M`` positions where ``select`` is true.

        Args:
            ids: ``(B, L)`` denoiser input.
            context: ``(B, L)`` bool, the context positions (masked in the unconditional copy).
            select: ``(B, L)`` bool; rows of the result follow ``ids[select]`` (row-major).

        Only the selected positions are upcast to ``LOG_PROB_DTYPE``, so the full
        ``(B, L, V)`` logits are never copied in float32.
        """
        if self.cfg_scale == 0:
            return _call(denoiser, ids)[select].to(LOG_PROB_DTYPE).log_softmax(dim=-1)
        unconditional = ids.masked_fill(context, self.mask_id)
        cond, uncond = _call(denoiser, torch.cat([ids, unconditional])).chunk(2)
        cond, uncond = cond[select].to(LOG_PROB_DTYPE), uncond[select].to(LOG_PROB_DTYPE)
        return (uncond + (self.cfg_scale + 1) * (cond - uncond)).log_softmax(dim=-1)

    # ----------------------------------------------------------------------------- checks

    def _candidate(
        self, index: int, context: Ids, continuation: Ids, device: torch.device, seed: int | None
    ) -> Candidate:
        context_ids = self._ids(f"pairs[{index}].context", context, device)
        continuation_ids = self._ids(f"pairs[{index}].continuation", continuation, device)
        if continuation_ids.numel() == 0:
            raise ValueError(f"pairs[{index}].continuation is empty; it must hold at least one token")
        return Candidate(context_ids, continuation_ids, seed)

    def _ids(self, name: str, ids: Ids, device: torch.device) -> torch.Tensor:
        if not isinstance(ids, torch.Tensor):
            ids = torch.tensor(list(ids), dtype=torch.long)
        if ids.dim() != 1 or ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
            raise ValueError(
                f"{name} must be a 1-D integer tensor or a list of ints; got shape "
                f"{tuple(ids.shape)} and dtype {ids.dtype}"
            )
        ids = ids.to(device=device, dtype=torch.long)
        if ids.numel() and ids.min() < 0:
            raise ValueError(f"{name} holds a negative id ({int(ids.min())}); ids must be >= 0")
        if (ids == self.mask_id).any():
            position = int((ids == self.mask_id).nonzero()[0])
            raise ValueError(
                f"{name} holds scoring.mask_id={self.mask_id} at position {position}; contexts "
                "and continuations must be fully observed"
            )
        return ids


# ---------------------------------------------------------------------------------- helpers


def _call(denoiser: Denoiser, x: torch.Tensor) -> torch.Tensor:
    logits = denoiser(x)
    if logits.dim() != 3 or logits.shape[:2] != x.shape:
        raise ValueError(
            f"denoiser must map ids {tuple(x.shape)} to logits (B, L, V); got {tuple(logits.shape)}"
        )
    return logits


def _pair_seeds(count: int, generator: torch.Generator | None) -> list[int]:
    """One seed per pair, in pair order, from ``generator`` (torch's global CPU RNG if None)."""
    device = generator.device if generator is not None else torch.device("cpu")
    return torch.randint(0, 2**62, (count,), generator=generator, device=device).tolist()


def _device_of(pairs: Sequence[Pair]) -> torch.device:
    for pair in pairs:
        for ids in pair:
            if isinstance(ids, torch.Tensor):
                return ids.device
    return torch.device("cpu")


def _require_int(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"scoring.{name}={value!r}: must be an integer")
    if value < minimum:
        raise ValueError(f"scoring.{name}={value}: must be >= {minimum}")


def _require_number(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"scoring.{name}={value!r}: must be a number")
