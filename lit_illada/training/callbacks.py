"""Lightning callbacks of the training entry point that Lightning does not ship."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.distributed as dist
from lightning.pytorch.callbacks import Checkpoint, ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

from lit_illada.checkpoints.files import (
    CheckpointSpaceError,
    checkpoint_step,
    clean_temporaries,
    link_last,
    remove_path,
    space_problem,
    step_checkpoints,
    stored_bytes,
)
from lit_illada.training import lightning_internals


class BestCheckpoint(ModelCheckpoint):
    """best.ckpt: the lowest ``val/nll`` of the run, kept across resumes of a moved run folder.

    ModelCheckpoint forgets the best score when its folder's path changed since the checkpoint
    (a run folder copied or moved, then continued) and writes the next best to best-v1.ckpt,
    leaving best.ckpt stale. Here the folder is always ``<run>/checkpoints``: a different path
    means the same folder moved, so the paths in the state are moved along with it.
    """

    def __init__(self, dirpath: str | Path) -> None:
        super().__init__(
            dirpath=dirpath, filename="best", monitor="val/nll", mode="min", save_top_k=1,
            auto_insert_metric_name=False,
        )

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        old = state_dict.get("dirpath")
        if old and self.dirpath and old != self.dirpath:
            state_dict = {**state_dict, "dirpath": self.dirpath}
            for key in ("best_model_path", "kth_best_model_path", "last_model_path"):
                state_dict[key] = self._moved(state_dict.get(key))
            state_dict["best_k_models"] = {
                self._moved(path): score for path, score in (state_dict.get("best_k_models") or {}).items()
            }
        super().load_state_dict(state_dict)

    def _moved(self, path: str | None) -> str | None:
        return os.path.join(self.dirpath, os.path.basename(path)) if path else path


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
        # weights_only=False: the save's flag, the whole training state (loads are weights_only=True).
        trainer.save_checkpoint(self.dirpath / f"epoch-{trainer.current_epoch + 1}.ckpt", weights_only=False)


def _positive(value: Any, kinds: type | tuple[type, ...]) -> bool:
    return isinstance(value, kinds) and not isinstance(value, bool) and value > 0


def last_training_batch(trainer: L.Trainer) -> bool:
    """Whether ``max_steps`` or ``max_epochs`` ends training after the current batch."""
    if trainer.max_steps != -1 and trainer.global_step >= trainer.max_steps:
        return True
    loop = trainer.fit_loop.epoch_loop
    last_epoch = trainer.max_epochs not in (None, -1) and trainer.current_epoch + 1 >= trainer.max_epochs
    return last_epoch and loop.batch_idx + 1 >= trainer.num_training_batches


def scheduled_validation_follows(trainer: L.Trainer) -> bool:
    """Whether Lightning validates after this batch by ``val_check_interval``, not because
    training stops (``should_stop`` alone makes it validate too)."""
    stop, trainer.should_stop = trainer.should_stop, False
    try:
        return lightning_internals.validation_follows(trainer)
    finally:
        trainer.should_stop = stop


class StepCheckpoints(Checkpoint):
    """The checkpoints a killed run resumes from: ``step-<n>.ckpt``, ``last.ckpt`` linking the newest.

    Saved after every validation, every ``every_n_steps`` optimizer steps, every
    ``every_minutes`` minutes, at the end of training, and when SIGTERM (or SIGUSR1, see
    ``PreemptionSignal``) stops the run; the newest ``keep_last`` are kept.

    A save holds a state Lightning resumes from without replaying or skipping a batch: the end
    of a training batch, or the end of the validation that follows it (a resume from the batch
    end would skip that validation). A batch-end state is taken in ``on_train_batch_end`` and
    written at the next hook, once Lightning has logged the batch's metrics row and the loggers
    are flushed: a kill in between resumes from the previous checkpoint and logs those steps
    again, rather than leaving a step missing from metrics.csv.

    The final weights are validated too, inside ``fit``, so that they compete for best.ckpt:
    when the last batch (``max_steps``, the last epoch, or a stop such as ``max_time``) falls
    between two scheduled validations, this sets ``trainer.should_stop``, which is how Lightning
    validates before an early stop. That run's checkpoint is then the state at ``on_train_end``:
    Lightning resumes from a validation-end state correctly only after a scheduled validation
    (it replays the rest of that batch), not after this one.
    """

    def __init__(
        self,
        dirpath: str | Path,
        every_n_steps: int | None = None,
        every_minutes: float | None = None,
        keep_last: int = 2,
    ) -> None:
        if every_n_steps is not None and not _positive(every_n_steps, int):
            raise ValueError(f"checkpoint.every_n_steps={every_n_steps!r}: a positive integer or null")
        if every_minutes is not None and not _positive(every_minutes, (int, float)):
            raise ValueError(f"checkpoint.every_minutes={every_minutes!r}: a positive number or null")
        if not _positive(keep_last, int):
            raise ValueError(f"checkpoint.keep_last={keep_last!r}: a positive integer (1: the newest only)")
        self.dirpath = Path(dirpath)
        self.every_n_steps = every_n_steps
        self.every_seconds = None if every_minutes is None else every_minutes * 60
        self.keep_last = keep_last
        self._saved_step = -1
        self._clock = time.monotonic()
        self._pending: dict[str, Any] | None = None  # a batch-end state, not written yet
        self._final_validation = False  # the validation after this batch is the extra final one

    @property
    def state_key(self) -> str:
        return "StepCheckpoints"  # one per run; no settings in the key, so they may change on resume

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if trainer.is_global_zero and self.dirpath.is_dir():
            clean_temporaries(self.dirpath)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        lightning_internals.check(trainer)  # before hours of training, not at the first save
        self._clock = time.monotonic()
        self._saved_step = trainer.global_step  # the checkpoint resumed from, or nothing to save yet
        if trainer.is_global_zero:
            # Newer than where training resumes: they failed their check (else resume had used them).
            for path in step_checkpoints(self.dirpath):
                if checkpoint_step(path) > trainer.global_step:
                    print(f"removing {path}: newer than the checkpoint this run resumed from")
                    remove_path(path)

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        final = trainer.should_stop or last_training_batch(trainer)
        self._final_validation = final and not scheduled_validation_follows(trainer)
        if self._final_validation:
            trainer.should_stop = True  # Lightning validates, then stops; on_train_end saves
            return
        if self._due(trainer) and not lightning_internals.validation_follows(trainer):
            # Lightning's own checkpoint dict (Trainer.save_checkpoint does the same): references
            # to weights and optimizer state, which stay as they are until the next batch trains.
            self._pending = lightning_internals.dump_checkpoint(trainer)

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        self._write_pending(trainer)

    # At these three the batch's row is logged already, and the state now (a superset of a
    # pending batch-end one: the validation done, the run ended or stopped) is saved instead.
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking:
            self._pending = None
            if not self._final_validation:
                self.save(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._pending = None
        self.save(trainer)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, error: BaseException) -> None:
        self._pending = None
        if isinstance(error, SIGTERMException):  # raised by Lightning at a batch boundary
            self.save(trainer)

    def _due(self, trainer: L.Trainer) -> bool:
        if self.every_n_steps and trainer.global_step % self.every_n_steps == 0:
            return True
        if self.every_seconds is None:
            return False
        # Rank 0's clock decides for every rank: a save is collective.
        return bool(trainer.strategy.broadcast(time.monotonic() - self._clock >= self.every_seconds))

    def _write_pending(self, trainer: L.Trainer) -> None:
        if self._pending is not None:
            checkpoint, self._pending = self._pending, None
            self.save(trainer, checkpoint)

    def save(self, trainer: L.Trainer, checkpoint: dict[str, Any] | None = None) -> None:
        """Write ``checkpoint`` (default: the state now) as step-<n>.ckpt and link last.ckpt to it."""
        step = trainer.global_step if checkpoint is None else checkpoint["global_step"]
        if step == self._saved_step:
            return
        path = self.dirpath / f"step-{step}.ckpt"
        self._check_space(trainer, path)
        for logger in trainer.loggers:  # metrics up to here reach the disk with the checkpoint
            logger.save()
        # Atomic: AtomicCheckpointIO, or FSDP2Strategy for DCP folders.
        if checkpoint is None:
            # weights_only=False is the save's flag: the whole training state, not weights alone.
            trainer.save_checkpoint(path, weights_only=False)
        else:
            trainer.strategy.save_checkpoint(checkpoint, path)
        if trainer.is_global_zero:
            link_last(path)
            for old in step_checkpoints(self.dirpath)[self.keep_last :]:
                remove_path(old)
        trainer.strategy.barrier()
        self._saved_step = step
        self._clock = time.monotonic()

    def _check_space(self, trainer: L.Trainer, path: Path) -> None:
        """Refuse on every rank at once, sized by the newest checkpoint (the first save is checked
        by the checkpoint IO itself, from the state's tensor bytes)."""
        problem = None
        if trainer.is_global_zero:
            previous = step_checkpoints(self.dirpath)
            if previous:
                problem = space_problem(self.dirpath, int(stored_bytes(previous[0]) * 1.05), path)
        problem = trainer.strategy.broadcast(problem)
        if problem is not None:
            raise CheckpointSpaceError(problem)


def collect_rng_states() -> dict[str, Any]:
    """torch (CPU and CUDA), numpy and Python RNG states as tensors and plain lists, which
    ``torch.load(weights_only=True)`` reads back (numpy arrays would need an allow-list)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, state, python_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "python": [version, list(state), python_gauss],
    }


def restore_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, state, python_gauss = states["python"]
    random.setstate((version, tuple(state), python_gauss))


class RNGStates(L.Callback):
    """Every rank's RNG states in the checkpoint, put back at the first batch after a resume.

    Masks and noise levels are drawn from torch's global RNG. Restoring it at the first resumed
    batch, not while Lightning loads the checkpoint, drops whatever start-up drew in between
    (model init, loader iterators), so that batch sees what the uninterrupted run saw.
    """

    def __init__(self) -> None:
        self._to_restore: list[dict[str, Any]] | None = None

    def state_dict(self) -> dict[str, Any]:
        mine = collect_rng_states()
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            ranks: list = [None] * dist.get_world_size()
            dist.all_gather_object(ranks, mine)  # every rank saves together: a collective is safe
            return {"ranks": ranks}
        return {"ranks": [mine]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._to_restore = state_dict["ranks"]

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        if self._to_restore is None:
            return
        ranks, self._to_restore = self._to_restore, None
        if len(ranks) != trainer.world_size:
            warnings.warn(
                f"the checkpoint holds RNG states of {len(ranks)} rank(s), this run has "
                f"{trainer.world_size}: random draws will not continue exactly as before",
                stacklevel=2,
            )
        restore_rng_states(ranks[trainer.global_rank % len(ranks)])


class PreemptionSignal(L.Callback):
    """SIGUSR1 (SLURM's ``--signal=USR1@<seconds>`` warning) and Ctrl-C stop the run like SIGTERM.

    Lightning turns SIGTERM into ``SIGTERMException`` at the next batch boundary, on every rank
    at once (rank 0's flag is broadcast each batch); ``StepCheckpoints`` saves then and the
    entry point exits with ``EXIT_PREEMPTED``. This handler raises the same flag for SIGUSR1
    and for a first SIGINT (``interrupted``: the entry point records it and exits
    ``EXIT_INTERRUPTED``); a second SIGINT raises ``KeyboardInterrupt`` at once, which Lightning
    turns into an immediate stop without a save. Under SLURM it replaces Lightning's own
    SIGUSR1 handler, which writes an extra ``hpc_ckpt_<n>.ckpt`` in the middle of a step (not an
    exact resume point); the entry point requeues the job itself after the save (``requeue``).
    """

    SIGNALS = ("SIGUSR1", "SIGINT")

    def __init__(self) -> None:
        self.received: int | None = None
        self.interrupted = False  # a first Ctrl-C asked to stop
        self.aborted = False  # a second one stopped at once
        self._previous: dict[int, Any] = {}
        self._trainer: L.Trainer | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # After Lightning registered its handlers (Trainer._run, before the fit loop starts).
        if threading.current_thread() is not threading.main_thread():
            return
        self._trainer = trainer
        for name in self.SIGNALS:
            if hasattr(signal, name):
                number = getattr(signal, name)
                self._previous[number] = signal.signal(number, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGINT:
            if self.interrupted:
                self.aborted = True
                raise KeyboardInterrupt  # the second Ctrl-C: stop now, nothing saved
            self.interrupted = True
            # os.write: print() may be in use by the interrupted code (not reentrant)
            os.write(2, b"\nCtrl-C: saving a checkpoint after this batch, then stopping; "
                        b"press Ctrl-C again to stop at once without saving\n")
        self.received = signum
        lightning_internals.raise_sigterm_flag(self._trainer)

    def _restore(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for number, previous in self._previous.items():
                signal.signal(number, previous if previous is not None else signal.SIG_DFL)
        self._previous = {}

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._restore()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, error: BaseException) -> None:
        # Lightning skips the teardown hook when fit ends by an exception (SIGTERMException
        # included). A Ctrl-C from now on is the default KeyboardInterrupt again.
        self._restore()

    @property
    def requeue(self) -> bool:
        """Whether this stop came from SLURM's SIGUSR1 warning: the job should be requeued."""
        return self.received == getattr(signal, "SIGUSR1", None) and "SLURM_JOB_ID" in os.environ
