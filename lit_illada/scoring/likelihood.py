"""LLaDA's Monte Carlo likelihood scorer (the negated ELBO loss), with stratified mask counts."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields

import torch

from lit_illada.sampling.sampler import Denoiser
from lit_illada.scoring.base import (
    LOG_PROB_DTYPE,
    Candidate,
    Scorer,
    _require_int,
)


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


