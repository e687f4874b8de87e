"""Lightning's CheckpointIO for single-file checkpoints, through ``checkpoint_files``.

Passed to the Trainer with ``plugins=``: every ``trainer.save_checkpoint`` of a single-file
checkpoint (best.ckpt, step-<n>.ckpt, epoch-<k>.ckpt) is written atomically after a disk-space
check, and a resume loads with ``weights_only=True`` only. (Lightning's own ``_atomic_save``
first builds the whole file in memory and never fsyncs.) Sharded checkpoints do not go
through CheckpointIO: ``distributed.FSDP2Strategy.save_checkpoint`` does the same for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from lit_illada.checkpoints.files import remove_path, safe_load, write_atomically


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        write_atomically(checkpoint, Path(path))

    def load_checkpoint(self, path, map_location: Any = None, weights_only: bool | None = None) -> dict:
        if weights_only is False:
            raise ValueError(f"{path}: lit_illada loads checkpoints with weights_only=True only")
        return safe_load(path, map_location=map_location)

    def remove_checkpoint(self, path) -> None:
        remove_path(Path(path))
