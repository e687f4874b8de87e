"""Sampler policies over a denoiser callable (ids -> logits), and the components a sampler
takes: a ``score`` (``scores``: ``Probability``, ``Margin``, ``NegativeEntropy``, ``Uniform``)
and a ``cache`` (``cache``: ``NoCache``, ``PrefixCache``, ``DualCache``).

Plain PyTorch: imports torch only, nothing else from lit_illada, and no Lightning, Hydra,
OmegaConf or data (Hydra builds the components from conf/sampler/, outside this package).
"""

from lit_illada.sampling.cache import DenoiserCache, DualCache, NoCache, PrefixCache
from lit_illada.sampling.policies import (
    AdaptiveSampler,
    ConfidenceSampler,
    EntropyBoundedSampler,
    FactorSampler,
    ThresholdSampler,
)
from lit_illada.sampling.result import SampleResult
from lit_illada.sampling.sampler import Denoiser, Proposal, Sampler, SamplingRun
from lit_illada.sampling.scores import Margin, NegativeEntropy, Probability, Score, Uniform
from lit_illada.sampling.variable_length import VariableLengthSampler

__all__ = [
    "AdaptiveSampler",
    "ConfidenceSampler",
    "DenoiserCache",
    "Denoiser",
    "DualCache",
    "EntropyBoundedSampler",
    "FactorSampler",
    "Margin",
    "NegativeEntropy",
    "NoCache",
    "PrefixCache",
    "Probability",
    "Proposal",
    "SampleResult",
    "Sampler",
    "SamplingRun",
    "Score",
    "ThresholdSampler",
    "Uniform",
    "VariableLengthSampler",
]
