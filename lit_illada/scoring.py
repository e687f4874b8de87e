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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
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


# --------------------------------------------------------------------- likelihood (LLaDA)


def stratified_mask_counts(length: int, samples: int, generator: torch.Generator) -> torch.Tensor:
    """Masked-token counts ``(samples,)`` for one mini-batch, each in ``{1..length}``.

    A random offset plus evenly spaced values, wrapped into ``[1, L]``: sample ``i`` of ``B``
    masks ``n_i = (k + floor(i * L / B)) mod L + 1`` tokens, with ``k`` uniform on
    ``{0..L-1}``. Each ``n_i`` is an integer shift of a uniform offset, hence uniform on
    ``{1..L}``, so the estimator stays unbiased; jointly, the batch covers ``{1..L}`` evenly:
    every count appears ``B / L`` times when ``L`` divides ``B``, and frequencies differ by
    at most one otherwise.

    LLaDA's code rounds ``k + i * L / B`` instead of flooring. ``torch.round`` rounds half to
    even, which keeps each count uniform but breaks the evenness whenever ``B / L`` is even
    (``L = 2, B = 4, k = 1`` gives counts 1, 2, 2, 2). Flooring in integer arithmetic avoids
    both the tie and any float error.
    """
    offset = torch.randint(0, length, (), generator=generator)
    spacing = torch.arange(samples) * length // samples
    return (offset + spacing) % length + 1


def random_subsets(counts: torch.Tensor, length: int, generator: torch.Generator) -> torch.Tensor:
    """Bool ``(S, length)``: row ``i`` has exactly ``counts[i]`` true entries, a uniform subset.

    Each row ranks the positions by a random permutation and marks the first ``counts[i]``,
    like LLaDA's per-row ``randperm``, but in one vectorized draw.
    """
    order = torch.rand(counts.numel(), length, generator=generator).argsort(dim=1)
    take = torch.arange(length) < counts.unsqueeze(1)
    return torch.zeros(counts.numel(), length, dtype=torch.bool).scatter(1, order, take)


@dataclass(frozen=True)
class NoisyRows:
    """Masked copies of candidates, the unit the likelihood scorer feeds the denoiser.

    Every field holds one entry per row, so rows of different candidates (of one total
    length) concatenate and split freely: a forward batch need not align with a candidate's
    Monte Carlo mini-batches.
    """

    targets: torch.Tensor  # (R, T) clean ids
    masked: torch.Tensor  # (R, T) bool: continuation positions replaced by [MASK]
    context_length: torch.Tensor  # (R,) context positions come first in each row
    weight: torch.Tensor  # (R,) L / n, the inverse masking ratio of a row with n masks
    owner: torch.Tensor  # (R,) CPU long: the row's candidate, as an index into its group

    def __len__(self) -> int:
        return self.owner.numel()

    def __getitem__(self, rows: slice) -> NoisyRows:
        return NoisyRows(*(getattr(self, f.name)[rows] for f in fields(self)))

    @staticmethod
    def cat(parts: Sequence[NoisyRows]) -> NoisyRows:
        if len(parts) == 1:
            return parts[0]
        return NoisyRows(*(torch.cat([getattr(p, f.name) for p in parts]) for f in fields(NoisyRows)))

    def ids(self, mask_id: int) -> torch.Tensor:
        return self.targets.masked_fill(self.masked, mask_id)

    def context(self) -> torch.Tensor:
        positions = torch.arange(self.targets.shape[1], device=self.targets.device)
        return positions < self.context_length.unsqueeze(1)


def rebatch(blocks: Iterable[NoisyRows], size: int) -> Iterator[NoisyRows]:
    """Regroup a stream of row blocks into batches of exactly ``size`` rows (the last: fewer).

    This is what lets ``score_many`` fill a forward batch from several candidates, e.g. 32
    single-sample candidates per call when ``mc_num=1``.
    """
    pending: list[NoisyRows] = []
    count = 0
    for block in blocks:
        pending.append(block)
        count += len(block)
        while count >= size:
            merged = NoisyRows.cat(pending)
            yield merged[:size]
            rest = merged[size:]
            pending, count = ([rest] if len(rest) else []), len(rest)
    if pending:
        yield NoisyRows.cat(pending)


class LikelihoodScorer(Scorer):
    """LLaDA's Monte Carlo likelihood estimator: the negated ELBO loss of the continuation.

    The context is never masked. With ``L`` the continuation length, each Monte Carlo sample
    masks exactly ``n`` continuation tokens, ``n`` in ``{1..L}`` stratified within a
    mini-batch (``stratified_mask_counts``), the ``n`` positions uniformly at random
    (``random_subsets``), and takes ``sum over masked tokens of CE * L / n``. The score is
    minus the mean over ``mc_num`` samples: an unbiased estimate of the ELBO, a lower bound
    on ``log p(continuation | context)``.

    Args:
        mask_id, cfg_scale: see ``Scorer``.
        mc_num: Monte Carlo samples per candidate (LLaDA: 128 for most tasks). A
            single-token continuation has only one possible masking, so it takes one sample
            whatever ``mc_num`` says; the estimate is the same, ``mc_num`` times cheaper.
        batch_size: samples per denoiser call (doubled in the call under guidance), and the
            mini-batch within which masked counts are stratified. ``mc_num`` need not be a
            multiple: the remainder forms a last, smaller mini-batch. Rows of several
            candidates share a call when one candidate's samples do not fill it.
    """

    stochastic = True

    def __init__(self, *, mask_id: int, mc_num: int = 128, batch_size: int = 32, cfg_scale: float = 0.0):
        super().__init__(mask_id=mask_id, cfg_scale=cfg_scale)
        _require_int("mc_num", mc_num, minimum=1)
        _require_int("batch_size", batch_size, minimum=1)
        self.mc_num = mc_num
        self.batch_size = batch_size

    def num_samples(self, length: int) -> int:
        """Monte Carlo samples for a continuation of ``length`` tokens (1 when it is exact)."""
        return 1 if length == 1 else self.mc_num

    def mini_batches(self, length: int) -> list[int]:
        """Sizes of the stratification mini-batches for a continuation of ``length`` tokens."""
        full, rest = divmod(self.num_samples(length), self.batch_size)
        return [self.batch_size] * full + ([rest] if rest else [])

    def score_group(self, denoiser: Denoiser, group: list[Candidate]) -> list[float]:
        totals = torch.zeros(len(group), dtype=torch.float64)
        for rows in rebatch(self.noisy_rows(group), self.batch_size):
            log_probs = self.log_probs(denoiser, rows.ids(self.mask_id), rows.context(), rows.masked)
            nll = -log_probs.gather(1, rows.targets[rows.masked].unsqueeze(1)).squeeze(1)
            row_of_token = rows.masked.nonzero(as_tuple=True)[0]
            row_loss = torch.zeros(len(rows), dtype=nll.dtype, device=nll.device)
            row_loss.index_add_(0, row_of_token, nll)
            totals.index_add_(0, rows.owner, (row_loss * rows.weight).cpu().to(torch.float64))
        return [
            -float(total) / self.num_samples(candidate.continuation_length)
            for total, candidate in zip(totals, group, strict=True)
        ]

    def noisy_rows(self, group: list[Candidate]) -> Iterator[NoisyRows]:
        """Every candidate's Monte Carlo samples, one stratified mini-batch at a time.

        Masks are drawn on the CPU from the candidate's own seed, so they do not depend on
        the device or on which other candidates share the group.
        """
        for owner, candidate in enumerate(group):
            generator = torch.Generator().manual_seed(candidate.seed)
            length, device = candidate.continuation_length, candidate.ids.device
            for size in self.mini_batches(length):
                counts = stratified_mask_counts(length, size, generator)
                context = torch.zeros(size, candidate.context_length, dtype=torch.bool)
                masked = torch.cat([context, random_subsets(counts, length, generator)], dim=1)
                yield NoisyRows(
                    targets=candidate.ids.expand(size, -1),
                    masked=masked.to(device),
                    context_length=torch.full((size,), candidate.context_length, device=device),
                    weight=(length / counts).to(device=device, dtype=LOG_PROB_DTYPE),
                    owner=torch.full((size,), owner),
                )


# ------------------------------------------------------------------- confidence (iLLaDA)


class ConfidenceScorer(Scorer):
    """iLLaDA's confidence-based scoring: reveal the candidate greedily, sum the true log-probs.

    The continuation starts fully masked after the (never masked) context. Each step runs
    the denoiser once and, among the still-masked continuation positions, picks the most
    confident one: the position whose top prediction has the highest probability,
    ``max_v softmax(logits)[v]`` over the whole vocabulary (the sampler's ``low_confidence``
    at temperature 0; the leftmost position wins a tie). It adds the log-probability of the
    TRUE token there and writes the true token in. ``L`` steps, ``L`` denoiser calls; the
    score is the sum.

    This is not a likelihood estimate. Along a fixed order the sum would be one
    factorization of ``log p``; here the order is picked by the model's confidence and
    changes with the candidate's tokens revealed so far, so ``exp(score)`` does not sum to 1
    over continuations, and the score is neither the ELBO nor a bound on ``log p``. It
    measures how well the candidate agrees with the model along the path the model would
    decode. It is deterministic: the generator is never used.

    Args:
        mask_id, cfg_scale: see ``Scorer``.
        batch_size: candidates per denoiser call. Candidates of one total length but
            different continuation lengths share calls; a row leaves the batch once revealed.
    """

    def __init__(self, *, mask_id: int, batch_size: int = 32, cfg_scale: float = 0.0):
        super().__init__(mask_id=mask_id, cfg_scale=cfg_scale)
        _require_int("batch_size", batch_size, minimum=1)
        self.batch_size = batch_size

    def score_group(self, denoiser: Denoiser, group: list[Candidate]) -> list[float]:
        scores: list[float] = []
        for start in range(0, len(group), self.batch_size):
            scores += self.reveal(denoiser, group[start : start + self.batch_size])
        return scores

    def reveal(self, denoiser: Denoiser, batch: list[Candidate]) -> list[float]:
        """Scores of one batch of equal-total-length candidates, revealed in lockstep."""
        targets = torch.stack([candidate.ids for candidate in batch])
        positions = torch.arange(targets.shape[1], device=targets.device)
        lengths = torch.tensor([candidate.context_length for candidate in batch], device=targets.device)
        context = positions < lengths.unsqueeze(1)
        hidden = ~context  # still-masked positions: the whole continuation, at first
        x = targets.masked_fill(hidden, self.mask_id)
        scores = torch.zeros(len(batch), dtype=torch.float64, device=targets.device)
        for _ in range(max(candidate.continuation_length for candidate in batch)):
            active = hidden.any(dim=1).nonzero(as_tuple=True)[0]
            select = hidden[active]
            log_probs = self.log_probs(denoiser, x[active], context[active], select)
            confidence = torch.full(select.shape, -torch.inf, dtype=LOG_PROB_DTYPE, device=x.device)
            confidence[select] = log_probs.max(dim=-1).values  # log of the top probability
            truth = torch.zeros(select.shape, dtype=LOG_PROB_DTYPE, device=x.device)
            truth[select] = log_probs.gather(1, targets[active][select].unsqueeze(1)).squeeze(1)
            chosen = confidence.argmax(dim=1)  # first maximum: the leftmost on ties
            scores[active] += truth[torch.arange(active.numel(), device=x.device), chosen].to(torch.float64)
            x[active, chosen] = targets[active, chosen]
            hidden[active, chosen] = False
        return scores.tolist()


# ------------------------------------------------------------------ autoregressive baseline


class AutoregressiveScorer(Scorer):
    """Exact ``log p(continuation | context)`` of a causal LM: the AR baseline's scorer.

    The denoiser must be causal (position ``i`` predicts token ``i + 1``), e.g.
    ``lambda ids: net(ids, causal=True)``. One forward per batch of equal-length candidates.
    The context must hold at least one token (the first continuation token needs a position
    to be predicted from).
    """

    def __init__(self, *, mask_id: int, batch_size: int = 32, cfg_scale: float = 0.0):
        super().__init__(mask_id=mask_id, cfg_scale=0.0)
        if cfg_scale:
            raise ValueError("scoring.cfg_scale must be 0 for the autoregressive scorer")
        _require_int("batch_size", batch_size, minimum=1)
        self.batch_size = batch_size

    def score_group(self, denoiser: Denoiser, group: list[Candidate]) -> list[float]:
        scores: list[float] = []
        for start in range(0, len(group), self.batch_size):
            batch = group[start : start + self.batch_size]
            if any(candidate.context_length == 0 for candidate in batch):
                raise ValueError("the autoregressive scorer needs a non-empty context (e.g. BOS)")
            ids = torch.stack([candidate.ids for candidate in batch])
            log_probs = _call(denoiser, ids)[:, :-1].to(LOG_PROB_DTYPE).log_softmax(dim=-1)
            token_log_probs = log_probs.gather(2, ids[:, 1:].unsqueeze(2)).squeeze(2)
            positions = torch.arange(1, ids.shape[1], device=ids.device)
            for row, candidate in enumerate(batch):
                in_continuation = positions >= candidate.context_length
                scores.append(float(token_log_probs[row][in_continuation].double().sum()))
        return scores


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
