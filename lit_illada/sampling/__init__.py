"""Sampler policies over a denoiser callable (ids -> logits). Plain PyTorch only."""

from lit_illada.sampling.policies import (
    AdaptiveSampler,
    ConfidenceSampler,
    EntropyBoundedSampler,
    FactorSampler,
    ThresholdSampler,
)
from lit_illada.sampling.result import SampleResult
from lit_illada.sampling.sampler import CACHE_MODES, Denoiser, Proposal, Sampler, SamplingRun
from lit_illada.sampling.scores import SCORES
from lit_illada.sampling.variable_length import VariableLengthSampler

__all__ = [
    "CACHE_MODES",
    "SCORES",
    "AdaptiveSampler",
    "ConfidenceSampler",
    "Denoiser",
    "EntropyBoundedSampler",
    "FactorSampler",
    "Proposal",
    "SampleResult",
    "Sampler",
    "SamplingRun",
    "ThresholdSampler",
    "VariableLengthSampler",
]
