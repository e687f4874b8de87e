"""Noise schedules for absorbing-state diffusion.

A schedule maps time t ∈ [0, 1] to the probability p(t) that a token is masked
(p = 1 − α(t) in MDLM notation) and gives dp/dt, from which the ELBO weight
−α′/(1−α) = p′/p follows. Time is drawn from [eps, 1]: LLaDA's
p = (1 − ε)u + ε with u ~ U(0, 1) is the linear schedule at t = (1 − ε)u + ε,
so its ELBO weight is exactly 1/p, as in the reference loss.
"""

from __future__ import annotations

import math

import torch


class NoiseSchedule:
    """Base class: subclasses define ``mask_prob`` and ``mask_prob_rate`` (dp/dt)."""

    def __init__(self, eps: float = 1e-3, stratified: bool = False) -> None:
        if not 0.0 <= eps < 1.0:
            raise ValueError(f"noise.eps={eps}: must be in [0, 1)")
        self.eps = eps
        self.stratified = stratified

    def mask_prob(self, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def mask_prob_rate(self, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def elbo_weight(self, t: torch.Tensor) -> torch.Tensor:
        """−α′(t) / (1 − α(t)) = p′(t) / p(t): the weight that makes the loss an NLL bound."""
        return self.mask_prob_rate(t) / self.mask_prob(t)

    def sample_t(
        self, batch_size: int, device: torch.device | str = "cpu", generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """One t per sequence in [eps, 1]; antithetic (evenly spaced, random offset) if stratified."""
        if self.stratified:
            offset = torch.rand(1, device=device, generator=generator)
            u = (offset + torch.arange(batch_size, device=device) / batch_size) % 1.0
        else:
            u = torch.rand(batch_size, device=device, generator=generator)
        return self.time_from_uniform(u)

    def time_from_uniform(self, u: torch.Tensor) -> torch.Tensor:
        return (1.0 - self.eps) * u + self.eps


class LinearSchedule(NoiseSchedule):
    """LLaDA's schedule: p(t) = t, so the ELBO weight is 1/t."""

    def mask_prob(self, t: torch.Tensor) -> torch.Tensor:
        return t

    def mask_prob_rate(self, t: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(t)


class CosineSchedule(NoiseSchedule):
    """p(t) = 1 − cos(πt/2): few masks early, spends more time at high noise than linear."""

    def mask_prob(self, t: torch.Tensor) -> torch.Tensor:
        return 1.0 - torch.cos(0.5 * math.pi * t)

    def mask_prob_rate(self, t: torch.Tensor) -> torch.Tensor:
        return 0.5 * math.pi * torch.sin(0.5 * math.pi * t)


class PolynomialSchedule(NoiseSchedule):
    """p(t) = t^k. k < 1 spends more training on heavily masked inputs, k > 1 on lightly masked."""

    def __init__(self, exponent: float = 2.0, eps: float = 1e-3, stratified: bool = False) -> None:
        super().__init__(eps=eps, stratified=stratified)
        if exponent <= 0:
            raise ValueError(f"noise.exponent={exponent}: must be > 0")
        self.exponent = exponent

    def mask_prob(self, t: torch.Tensor) -> torch.Tensor:
        return t.pow(self.exponent)

    def mask_prob_rate(self, t: torch.Tensor) -> torch.Tensor:
        return self.exponent * t.pow(self.exponent - 1.0)
