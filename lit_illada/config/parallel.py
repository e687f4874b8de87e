"""How a run is spread over processes: the ``parallel.*`` (FSDP2) settings and the world size.

Config-level facts that the planner, the checks and training all need; torch only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.distributed.fsdp import MixedPrecisionPolicy

from lit_illada.config.errors import ConfigError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class FSDPConfig:
    """The ``parallel.*`` keys of ``conf/trainer/fsdp.yaml``; checked when the config is built."""

    param_dtype: str = "bfloat16"  # dtype of gathered weights and compute; master weights stay float32
    reduce_dtype: str = "float32"  # dtype of the gradient reduce-scatter
    activation_checkpointing: int = 0  # 0 off, 1 every block (full), k every k-th block

    def __post_init__(self) -> None:
        for key in ("param_dtype", "reduce_dtype"):
            if getattr(self, key) not in DTYPES:
                raise ValueError(f"parallel.{key}={getattr(self, key)!r}: choose one of {sorted(DTYPES)}")
        k = self.activation_checkpointing
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ValueError(
                f"parallel.activation_checkpointing={k!r}: 0 (off), 1 (every block) or k (every k-th block)"
            )

    @property
    def mp_policy(self) -> MixedPrecisionPolicy:
        dtypes = DTYPES[self.param_dtype], DTYPES[self.reduce_dtype]
        return MixedPrecisionPolicy(param_dtype=dtypes[0], reduce_dtype=dtypes[1])


def checkpointed_blocks(n_layers: int, every: int) -> list[int]:
    """Blocks whose activations are recomputed in the backward pass: every ``every``-th (0: none)."""
    return [] if every == 0 else list(range(0, n_layers, every))


def world_size(trainer_cfg) -> int:
    """Processes a ``trainer.*`` config runs: devices per node x nodes."""
    devices, nodes = trainer_cfg.get("devices", 1), trainer_cfg.get("num_nodes", 1)
    if devices in ("auto", -1, "-1"):  # Lightning: every visible GPU; one process on CPU
        on_gpu = trainer_cfg.get("accelerator") in ("gpu", "cuda", "auto") and torch.cuda.is_available()
        devices = torch.cuda.device_count() if on_gpu else 1
    elif isinstance(devices, Sequence) and not isinstance(devices, str):
        devices = len(devices)  # explicit device indices
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise ConfigError(
            f"trainer.devices={devices!r}: expected a positive integer, a list of indices, or auto"
        )
    if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 1:
        raise ConfigError(f"trainer.num_nodes={nodes!r}: expected a positive integer")
    return devices * nodes


def is_launch_rank_zero() -> bool:
    """False when the launcher (Lightning, torchrun or srun) named this process a non-zero rank.

    Valid before the process group exists, so the run record is written by one process only.
    """
    return all(os.environ.get(key, "0") == "0" for key in ("RANK", "SLURM_PROCID", "NODE_RANK", "LOCAL_RANK"))


