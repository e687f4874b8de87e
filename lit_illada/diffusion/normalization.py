"""Loss normalizations: how an objective turns per-token losses into one number.

A normalization is a component of the objective (``normalize=``): in yaml a ``_target_`` of
``conf/objective/normalize/``, chosen on the command line with
``objective/normalize=tokens|answer_length`` (``stage=sft`` picks ``answer_length``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch


class Normalization(ABC):
    """``(per_token (N,), where (B, L), eligible (B, L)) -> scalar``.

    ``per_token`` holds one value per true entry of ``where`` (row-major order, as
    ``tensor[where]`` gives them); ``eligible`` marks the positions that could take a loss.
    """

    @abstractmethod
    def __call__(
        self, per_token: torch.Tensor, where: torch.Tensor, eligible: torch.Tensor
    ) -> torch.Tensor: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class PerToken(Normalization):
    """Divide the sum by the number of eligible tokens in the batch (B·L when pretraining)."""

    def __call__(self, per_token, where, eligible):
        return per_token.sum() / eligible.sum().clamp(min=1)


class PerAnswerLength(Normalization):
    """Divide each row's sum by its own eligible count, then average the rows (LLaDA SFT)."""

    def __call__(self, per_token, where, eligible):
        rows = torch.zeros(where.shape[0], dtype=per_token.dtype, device=per_token.device)
        rows.index_add_(0, where.nonzero()[:, 0], per_token)
        return (rows / eligible.sum(1).clamp(min=1)).mean()
