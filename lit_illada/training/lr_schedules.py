"""Learning-rate schedules: multipliers of the base lr as a function of the step.

Each schedule is a callable ``(step, total_steps) -> float`` that the module wraps in a
``LambdaLR``. Plain Python, no Lightning.
"""

from __future__ import annotations

import math


def _check(key: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ValueError(f"lr_schedule.{key}={value}: must be in [{low}, {high}]")


def _check_warmup(warmup_steps: int) -> None:
    if warmup_steps < 0:
        raise ValueError(f"lr_schedule.warmup_steps={warmup_steps}: must be >= 0")


def _warmup(step: int, warmup_steps: int) -> float:
    """Linear ramp to 1 over ``warmup_steps`` (both schedules start this way)."""
    return (step + 1) / warmup_steps


class WarmupHoldCosine:
    """Linear warmup → constant hold → cosine decay to ``min_lr_ratio`` (iLLaDA's shape).

    ``hold_fraction`` is the share of the post-warmup steps spent at the peak; 0 gives
    plain warmup + cosine, 1 gives warmup + constant.
    """

    def __init__(self, warmup_steps: int = 100, hold_fraction: float = 0.0, min_lr_ratio: float = 0.1) -> None:
        _check_warmup(warmup_steps)
        _check("hold_fraction", hold_fraction, 0.0, 1.0)
        _check("min_lr_ratio", min_lr_ratio, 0.0, 1.0)
        self.warmup_steps = warmup_steps
        self.hold_fraction = hold_fraction
        self.min_lr_ratio = min_lr_ratio

    def __call__(self, step: int, total_steps: int) -> float:
        if step < self.warmup_steps:
            return _warmup(step, self.warmup_steps)
        decay_start = self.warmup_steps + self.hold_fraction * max(total_steps - self.warmup_steps, 0)
        if step < decay_start or total_steps <= decay_start:
            return 1.0
        progress = min((step - decay_start) / (total_steps - decay_start), 1.0)
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cosine


class WarmupStableDecay:
    """Warmup → constant → linear decay over the last ``decay_fraction`` of training (WSD)."""

    def __init__(self, warmup_steps: int = 100, decay_fraction: float = 0.2, min_lr_ratio: float = 0.0) -> None:
        _check_warmup(warmup_steps)
        _check("decay_fraction", decay_fraction, 0.0, 1.0)
        _check("min_lr_ratio", min_lr_ratio, 0.0, 1.0)
        self.warmup_steps = warmup_steps
        self.decay_fraction = decay_fraction
        self.min_lr_ratio = min_lr_ratio

    def __call__(self, step: int, total_steps: int) -> float:
        if step < self.warmup_steps:
            return _warmup(step, self.warmup_steps)
        decay_start = total_steps * (1.0 - self.decay_fraction)
        if step < decay_start or self.decay_fraction == 0:
            return 1.0
        progress = min((step - decay_start) / (total_steps - decay_start), 1.0)
        return 1.0 - (1.0 - self.min_lr_ratio) * progress
