"""Multiple-choice scorers: how much a masked diffusion LM likes a continuation of a context.

May import torch and ``lit_illada.sampling`` (the ``Denoiser`` type) only: no Lightning, Hydra
or data. ``base`` holds what every scorer shares; one module per method.
"""

from lit_illada.scoring.autoregressive import AutoregressiveScorer
from lit_illada.scoring.base import Candidate, Scorer, equal_length_groups
from lit_illada.scoring.confidence import ConfidenceScorer
from lit_illada.scoring.likelihood import (
    LikelihoodScorer,
    NoisyRows,
    random_subsets,
    rebatch,
    stratified_mask_counts,
)

__all__ = [
    "AutoregressiveScorer", "Candidate", "ConfidenceScorer", "LikelihoodScorer", "NoisyRows", "Scorer",
    "equal_length_groups", "random_subsets", "rebatch", "stratified_mask_counts",
]
