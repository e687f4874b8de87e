"""Pure-tensor diffusion components: schedules, weighting, masking scopes, objectives."""

from lit_illada.diffusion.masking import AllPositions, ResponseOnly
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
    "ObjectiveOutput",
    "PolynomialSchedule",
    "ResponseOnly",
    "UnweightedLoss",
]
