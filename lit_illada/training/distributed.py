"""Multi-GPU training: FSDP2 sharding of the Transformer and the Lightning strategy that runs it.

``parallelize()`` stays apart from the model (torchtitan's layout). With ``trainer=fsdp`` the
LightningModule builds its Transformer on the meta device, and ``configure_model`` calls
``parallelize`` (activation checkpointing, optional per-block compile, ``fully_shard`` per block
then the root) and ``materialize`` (allocate this rank's shards, run the model's own
``init_weights``). No rank ever holds the whole model.
"""

from __future__ import annotations

import warnings
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
from lightning.fabric.plugins.collectives.torch_collective import default_pg_timeout
from lightning.pytorch.strategies import ModelParallelStrategy
from torch import nn
from torch.distributed import checkpoint as dcp
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    set_model_state_dict,
)
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.fsdp import fully_shard, register_fsdp_forward_method
from torch.distributed.tensor import DTensor

from lit_illada.checkpoints.files import (
    SPACE_MARGIN,
    CheckpointSpaceError,
    fsync_tree,
    kill_during_save_hook,
    remove_path,
    replace_path,
    sharded_checkpoint,
    space_problem,
    temporary_name,
    tensor_bytes,
)
from lit_illada.checkpoints.loader import read_weights, resolve
from lit_illada.config.parallel import FSDPConfig, checkpointed_blocks
from lit_illada.core.model import Transformer
from lit_illada.training.compilation import compile_blocks

# Transformer methods that samplers call besides forward(): they must unshard the root too.
EXTRA_FORWARD_METHODS = ("prefill", "forward_window")

def parallelize(
    model: Transformer, mesh: DeviceMesh, config: FSDPConfig, compile: bool = False
) -> Transformer:
    """Shard ``model`` in place over the 1-D data-parallel ``mesh``: each block, then the root.

    Per block, in torchtitan's order: activation checkpointing, then ``compile`` (``model.compile``:
    what compiles is the checkpoint-wrapped block), then ``fully_shard``. The root group holds the
    embedding, the tied LM head and the final norm. Works on a model still on the meta device:
    nothing is allocated here.
    """
    checkpointed = set(checkpointed_blocks(len(model.blocks), config.activation_checkpointing))
    for i in checkpointed:
        # The wrapper's state-dict hooks drop its prefix: checkpoints load with or without it.
        model.blocks[i] = checkpoint_wrapper(model.blocks[i])
    if compile:
        compile_blocks(model)  # in place: parameter names (and checkpoint keys) do not change
    for block in model.blocks:
        fully_shard(block, mesh=mesh, mp_policy=config.mp_policy)
    fully_shard(model, mesh=mesh, mp_policy=config.mp_policy)
    for method in EXTRA_FORWARD_METHODS:
        register_fsdp_forward_method(model, method)
    return model


def materialize(model: Transformer, device: torch.device) -> None:
    """Allocate this rank's shards on ``device`` and initialize them with ``model.init_weights``."""
    model.to_empty(device=device)
    if device.type == "cuda":
        # DTensor's offset-based RNG gives each shard its own slice of one stream: the
        # initial weights do not depend on the number of ranks.
        model.init_weights()
        return
    # DTensor has no sharded RNG on CPU: every rank would draw the same numbers and the shards
    # of a weight would repeat. Give each rank its own stream (the init then depends on the
    # world size; runs that must match across world sizes start from init_from=).
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(torch.initial_seed() + dist.get_rank())
        model.init_weights()


def load_into_sharded(model: Transformer, path: str | Path) -> None:
    """Copy a run's weights (``init_from=``) into the sharded ``model``.

    A DCP folder is read in place, shard by shard on every rank (no rank ever holds the whole
    model); anything else is read by the one loader on rank 0 only (a ``.ckpt`` memory-mapped)
    and broadcast one tensor at a time.
    """
    path = resolve(path)  # a run directory: its best, else last, checkpoint
    if sharded_checkpoint(path):
        state = {"state_dict": {f"net.{k}": v for k, v in get_model_state_dict(model).items()}}
        dcp.load(state, checkpoint_id=str(path))  # in place, into this rank's shards
        return
    full = {}
    if dist.get_rank() == 0:
        full = read_weights(path).state
    options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True)
    set_model_state_dict(model, full, options=options)


def local_param_bytes(model: nn.Module) -> int:
    """Bytes of parameter storage on this rank (the local shards of sharded weights)."""
    locals_ = (p.to_local() if isinstance(p, DTensor) else p for p in model.parameters())
    return sum(t.numel() * t.element_size() for t in locals_)


class FSDP2Strategy(ModelParallelStrategy):
    """Lightning's ModelParallelStrategy as pure FSDP2: every rank is a data-parallel shard.

    Lightning's "auto" sizes put tensor parallelism across the GPUs of a node, which this model
    does not implement; here data_parallel_size is the world size and tensor_parallel_size 1.
    """

    def __init__(
        self,
        save_distributed_checkpoint: bool = True,
        process_group_backend: str | None = None,
        timeout: timedelta | None = default_pg_timeout,
    ) -> None:
        super().__init__(
            data_parallel_size="auto",
            tensor_parallel_size=1,
            save_distributed_checkpoint=save_distributed_checkpoint,
            process_group_backend=process_group_backend,
            timeout=timeout,
        )

    def setup_environment(self) -> None:
        # Devices and nodes are known by now; the parent builds the mesh from these sizes.
        self._data_parallel_size = self.num_nodes * self.num_processes
        super().setup_environment()

    def save_checkpoint(self, checkpoint: dict, filepath, storage_options=None) -> None:
        """A DCP folder written under a temporary name by every rank, then renamed into place by
        rank 0 (``lit_illada.checkpoints.files``): a kill mid-save leaves the old folder intact."""
        if not self._save_distributed_checkpoint:
            super().save_checkpoint(checkpoint, filepath, storage_options)
            return
        path = Path(self.broadcast(str(filepath)))
        tmp = temporary_name(path)
        local = torch.tensor(float(tensor_bytes(checkpoint)), dtype=torch.float64, device=self.root_device)
        needed = int(self.reduce(local, reduce_op="sum").item() * SPACE_MARGIN)
        problem = self.broadcast(space_problem(path.parent, needed, path) if self.global_rank == 0 else None)
        if problem is not None:  # every rank refuses together: no rank waits in a collective
            raise CheckpointSpaceError(problem)
        if self.global_rank == 0:
            remove_path(tmp)  # left by a save that was killed
        self.barrier()
        with warnings.catch_warnings():
            # best.ckpt/ is rewritten by design; DCP warns on every save.
            warnings.filterwarnings("ignore", message="Detected an existing checkpoint")
            super().save_checkpoint(checkpoint, tmp, storage_options)
        self.barrier()  # every rank's shards are on disk
        if self.global_rank == 0:
            kill_during_save_hook(checkpoint.get("global_step", -1), tmp)
            fsync_tree(tmp)
            replace_path(tmp, path)
        self.barrier()
