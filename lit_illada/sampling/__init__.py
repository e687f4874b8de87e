"""Sampler policies over a denoiser callable (ids -> logits). Plain PyTorch only."""

from lit_illada.sampling.policies import ConfidenceSampler, RandomSampler
from lit_illada.sampling.result import SampleResult
from lit_illada.sampling.sampler import Denoiser, Sampler, SamplingRun

__all__ = [
    "ConfidenceSampler",
    "Denoiser",
    "RandomSampler",
    "SampleResult",
    "Sampler",
    "SamplingRun",
]
