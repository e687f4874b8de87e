"""Loss weighting w(t) applied to each masked token's cross-entropy."""

from __future__ import annotations

import torch

from lit_illada.diffusion.schedules import NoiseSchedule


class ElboWeighting:
    """w(t) = −α′/(1−α): the loss is an upper bound on the NLL (1/t for the linear schedule)."""

    def __call__(self, t: torch.Tensor, schedule: NoiseSchedule) -> torch.Tensor:
        return schedule.elbo_weight(t)


class UnweightedLoss:
    """w(t) = 1: plain masked-token cross-entropy; lower variance, no longer a likelihood bound."""

    def __call__(self, t: torch.Tensor, schedule: NoiseSchedule) -> torch.Tensor:
        return torch.ones_like(t)
