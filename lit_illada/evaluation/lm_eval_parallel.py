"""Data-parallel lm-eval runs: one process per device, as lm-eval users launch them.

    torchrun --nproc_per_node 8 -m lit_illada.lm_eval run --model lit_illada --model_args ckpt=... --tasks ...
    accelerate launch -m lit_illada.lm_eval run --model lit_illada --model_args ckpt=... --tasks ...

lm-eval's evaluator does the sharding itself: it gives each process the documents of its
``rank`` out of ``world_size`` and gathers the per-document metrics on rank 0 through the
model's ``all_gather`` / ``gather_object`` / ``barrier`` (HFLM provides them through
accelerate). ``ProcessGroup`` provides the same from the launcher's environment (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, set by torchrun and by accelerate launch alike): NCCL on GPUs,
one per local rank; gloo on CPUs.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProcessGroup:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_environment(cls) -> ProcessGroup:
        return cls(
            rank=int(os.environ.get("RANK", 0)),
            world_size=int(os.environ.get("WORLD_SIZE", 1)),
            local_rank=int(os.environ.get("LOCAL_RANK", 0)),
        )

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def device_for(self, requested: torch.device) -> torch.device:
        """Each process its own GPU (``cuda:LOCAL_RANK``), whatever index was asked, as HFLM does
        under accelerate; a CPU run stays on the CPU."""
        if not self.distributed or requested.type != "cuda":
            return requested
        if requested.index not in (None, self.local_rank):
            log.info("data parallel: rank %d uses cuda:%d, not %s", self.rank, self.local_rank, requested)
        return torch.device("cuda", self.local_rank)

    def start(self, device: torch.device) -> None:
        """Join the launcher's process group (a no-op in a single process)."""
        if not self.distributed or dist.is_initialized():
            return
        if device.type == "cuda":
            torch.cuda.set_device(device)  # NCCL's object collectives use the current device
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    # The collectives lm-eval's evaluator calls; single-process forms match lm_eval.api.model.LM.
    def all_gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """Every rank's ``tensor`` concatenated along dim 0 (a scalar becomes one entry)."""
        if not self.distributed:
            return tensor
        tensor = tensor.reshape(1) if tensor.dim() == 0 else tensor
        parts = [torch.empty_like(tensor) for _ in range(self.world_size)]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts)

    def gather_object(self, obj, dst: int = 0):
        if not self.distributed:
            return [obj]
        gathered = [None] * self.world_size if self.rank == dst else None
        dist.gather_object(obj, gathered, dst=dst)
        return gathered

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()
