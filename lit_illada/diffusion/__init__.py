"""Pure-tensor diffusion components: noise schedules, loss weighting, masking scopes, loss
normalizations and the objectives that combine them.

Plain PyTorch: imports torch only, nothing else from lit_illada (the model is passed in), and
no Lightning, Hydra, OmegaConf or data.
"""

from lit_illada.diffusion.masking import AllPositions, ResponseOnly
from lit_illada.diffusion.normalization import Normalization, PerAnswerLength, PerToken
from lit_illada.diffusion.objectives import AutoregressiveObjective, DiffusionObjective, ObjectiveOutput
from lit_illada.diffusion.schedules import CosineSchedule, LinearSchedule, NoiseSchedule, PolynomialSchedule
from lit_illada.diffusion.weighting import ElboWeighting, UnweightedLoss

__all__ = [
    "AllPositions",
    "AutoregressiveObjective",
    "CosineSchedule",
    "DiffusionObjective",
    "ElboWeighting",
    "LinearSchedule",
    "NoiseSchedule",
    "Normalization",
    "ObjectiveOutput",
    "PerAnswerLength",
    "PerToken",
    "PolynomialSchedule",
    "ResponseOnly",
    "UnweightedLoss",
]
