"""Shared test setup."""

import os

import pytest

# Keep CI quiet and offline; W&B never needs a server in tests.
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    """One token cache for the whole session: the stdlib is tokenized once."""
    return tmp_path_factory.mktemp("token_cache")


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, cache_dir):
    """A tiny model trained for a few steps: the checkpoint that generation tests load."""
    from tests.runs import train  # noqa: PLC0415 - imports Lightning

    root = tmp_path_factory.mktemp("runs")
    train(root, cache_dir, "trainer.max_steps=20", "trainer.val_check_interval=10", name="trained")
    return root / "trained"
