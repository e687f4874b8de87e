"""iLLaDA's confidence scorer: reveal the candidate greedily, sum the true log-probabilities."""

from __future__ import annotations

import torch

from lit_illada.sampling.sampler import Denoiser
from lit_illada.scoring.base import LOG_PROB_DTYPE, Candidate, Scorer, _require_int


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


