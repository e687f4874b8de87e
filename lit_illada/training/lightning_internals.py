"""The private Lightning attributes that exact resume and preemption signals use, read here only.

Lightning has no public API for three things lit_illada needs: the checkpoint dict of the state
at a batch end (saved a hook later), whether validation follows the current batch, and raising
its SIGTERM stop flag from another signal. Each private attribute behind them is named once, in
``INTERNALS``; a Lightning release that renamed one fails with ``LightningInternalsError``, which
names the attribute and the Lightning range lit_illada is tested with. ``check`` looks them all
up at train start, so a long run fails at step 0, not at its first checkpoint or signal.
tests/test_lightning_internals.py is the canary for each, on the installed Lightning.
"""

from __future__ import annotations

from typing import Any

import lightning as L

# pyproject.toml's lightning requirement (a test keeps the two equal).
TESTED_RANGE = ">=2.6,<2.7"

# Attribute path from the Trainer -> what lit_illada uses it for.
INTERNALS: dict[str, str] = {
    "_checkpoint_connector.dump_checkpoint": "the checkpoint of a batch-end state (StepCheckpoints)",
    "fit_loop.epoch_loop._should_check_val_fx": "whether validation follows a batch (StepCheckpoints)",
    "fit_loop._data_fetcher": "whether validation follows a batch (StepCheckpoints)",
    "_signal_connector.received_sigterm": "SIGUSR1 stopping a run like SIGTERM (PreemptionSignal)",
}


class LightningInternalsError(RuntimeError):
    """A private Lightning attribute lit_illada relies on is missing from this Lightning."""


def _missing(path: str) -> LightningInternalsError:
    return LightningInternalsError(
        f"lightning {L.__version__} has no Trainer.{path}, which lit_illada uses for "
        f"{INTERNALS[path]}; lit_illada is tested with lightning{TESTED_RANGE}: "
        f"pip install 'lightning{TESTED_RANGE}'"
    )


def _resolve(trainer: L.Trainer, path: str) -> Any:
    obj: Any = trainer
    for part in path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise _missing(next(full for full in INTERNALS if full.startswith(path))) from None
    return obj


def check(trainer: L.Trainer) -> None:
    """Every attribute of ``INTERNALS`` exists (call during fit, once the loops are set up)."""
    for path in INTERNALS:
        _resolve(trainer, path)


def dump_checkpoint(trainer: L.Trainer) -> dict[str, Any]:
    """Lightning's own checkpoint dict of the state now (what ``Trainer.save_checkpoint`` writes)."""
    return _resolve(trainer, "_checkpoint_connector.dump_checkpoint")(weights_only=False)


def validation_follows(trainer: L.Trainer) -> bool:
    """Whether Lightning validates right after the current training batch: its own rule, asked
    from ``on_train_batch_end`` (ModelCheckpoint peeks at the loop likewise)."""
    should_check_val = _resolve(trainer, "fit_loop.epoch_loop._should_check_val_fx")
    return bool(should_check_val(_resolve(trainer, "fit_loop._data_fetcher")))


def raise_sigterm_flag(trainer: L.Trainer) -> None:
    """Set the flag Lightning's SIGTERM handler sets, without that handler's collective (safe in a
    signal handler): the loops stop at the next batch boundary, on every rank."""
    path = "_signal_connector.received_sigterm"
    _resolve(trainer, path)  # it exists: setting a renamed attribute would silently do nothing
    owner_path, name = path.rsplit(".", 1)
    setattr(_resolve(trainer, owner_path), name, True)
