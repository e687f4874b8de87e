"""Lightning callbacks of the training entry point that Lightning does not ship."""

from __future__ import annotations

from pathlib import Path

import lightning as L


class EpochCheckpoints(L.Callback):
    """Keeps ``epoch-<k>.ckpt`` after every training epoch k (1-based), none overwritten.

    ModelCheckpoint's ``{epoch}`` is 0-based and tied to its top-k bookkeeping; the SFT-epoch
    ablation wants one plainly named checkpoint per epoch, scored afterwards.
    """

    def __init__(self, dirpath: str | Path) -> None:
        self.dirpath = Path(dirpath)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        trainer.save_checkpoint(self.dirpath / f"epoch-{trainer.current_epoch + 1}.ckpt")


def epoch_checkpoints(dirpath: str | Path) -> list[tuple[int, Path]]:
    """(epoch, path) of every ``epoch-<k>.ckpt`` in ``dirpath``, in epoch order."""
    found = []
    for path in Path(dirpath).glob("epoch-*.ckpt"):
        suffix = path.stem.removeprefix("epoch-")
        if suffix.isdigit():
            found.append((int(suffix), path))
    return sorted(found)
