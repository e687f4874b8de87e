"""Canaries for the private Lightning attributes that exact resume and preemption signals use.

Each is reached through lit_illada/training/lightning_internals.py only. These tests run a tiny
plain-Lightning fit (no lit_illada model: what is under test is the installed Lightning) and
check that every accessor still does what StepCheckpoints and PreemptionSignal rely on; a
Lightning release that renames one fails here, in the lowest-versions CI lane or the main one.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from torch.utils.data import DataLoader, TensorDataset

from lit_illada.training import lightning_internals
from lit_illada.training.lightning_internals import INTERNALS, LightningInternalsError

ROOT = Path(__file__).resolve().parent.parent
VAL_EVERY = 3  # validation follows batches 3, 6, ... (1-based)
STOP_AT = 5  # the probe raises the SIGTERM flag after this many batches


class _Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        (x,) = batch
        return self.layer(x).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class _Probe(L.Callback):
    """Calls each accessor where lit_illada's callbacks do and records what it returned."""

    def __init__(self) -> None:
        self.follows: list[bool] = []
        self.dumped: dict | None = None

    def on_train_start(self, trainer, pl_module):
        lightning_internals.check(trainer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.follows.append(lightning_internals.validation_follows(trainer))
        if batch_idx == 1:
            self.dumped = lightning_internals.dump_checkpoint(trainer)
        if batch_idx + 1 == STOP_AT:
            lightning_internals.raise_sigterm_flag(trainer)


def _trainer(**kwargs) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        max_steps=20,
        val_check_interval=VAL_EVERY,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )


@pytest.fixture(scope="module")
def probe() -> _Probe:
    torch.manual_seed(0)
    data = DataLoader(TensorDataset(torch.randn(40, 4)), batch_size=2)
    probe = _Probe()
    with pytest.raises(SIGTERMException):  # the flag stops the fit at the next batch boundary
        _trainer(callbacks=[probe]).fit(_Tiny(), train_dataloaders=data, val_dataloaders=data)
    return probe


def test_validation_follows_is_lightnings_own_schedule(probe):
    """fit_loop.epoch_loop._should_check_val_fx(fit_loop._data_fetcher)"""
    assert probe.follows == [(i + 1) % VAL_EVERY == 0 for i in range(STOP_AT)]


def test_dump_checkpoint_is_the_state_at_that_batch(probe):
    """_checkpoint_connector.dump_checkpoint(weights_only=False)"""
    assert probe.dumped["global_step"] == 2
    assert {"state_dict", "optimizer_states", "loops"} <= probe.dumped.keys()


def test_sigterm_flag_stops_the_fit_after_that_batch(probe):
    """_signal_connector.received_sigterm (the fixture asserts SIGTERMException was raised)"""
    assert len(probe.follows) == STOP_AT


def _remove(trainer: L.Trainer, path: str, monkeypatch) -> None:
    """Simulate a Lightning release without ``path``: delete its last part where it is defined."""
    *parents, name = path.split(".")
    owner = trainer
    for part in parents:
        owner = getattr(owner, part)
    if name in vars(owner):
        monkeypatch.delattr(owner, name)
    else:  # a method: defined on the class (monkeypatch puts it back)
        monkeypatch.delattr(next(c for c in type(owner).__mro__ if name in vars(c)), name)


@pytest.mark.parametrize("path", list(INTERNALS))
def test_a_missing_attribute_is_named_with_the_tested_range(path, monkeypatch):
    trainer = _trainer()
    lightning_internals.check(trainer)  # all present on the installed Lightning
    _remove(trainer, path, monkeypatch)
    with pytest.raises(LightningInternalsError) as caught:
        lightning_internals.check(trainer)
    message = str(caught.value)
    assert f"Trainer.{path}" in message
    assert f"lightning{lightning_internals.TESTED_RANGE}" in message
    assert L.__version__ in message


def test_raising_the_flag_on_a_renamed_connector_fails_loudly(monkeypatch):
    trainer = _trainer()
    _remove(trainer, "_signal_connector.received_sigterm", monkeypatch)
    with pytest.raises(LightningInternalsError, match="received_sigterm"):
        lightning_internals.raise_sigterm_flag(trainer)  # setattr alone would have "worked"


def test_tested_range_is_the_declared_lightning_requirement():
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    lightning = next(Requirement(d) for d in dependencies if Requirement(d).name == "lightning")
    assert lightning.specifier == SpecifierSet(lightning_internals.TESTED_RANGE)
    assert L.__version__ in lightning.specifier, "the installed Lightning is outside the tested range"
