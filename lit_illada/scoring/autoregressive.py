"""The AR baseline's scorer: exact log p(continuation | context) of a causal LM."""

from __future__ import annotations

import torch

from lit_illada.sampling.sampler import Denoiser
from lit_illada.scoring.base import LOG_PROB_DTYPE, Candidate, Scorer, _call, _require_int


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


