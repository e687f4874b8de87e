"""Shared test setup."""

import os

# Keep CI quiet and offline; W&B never needs a server in tests.
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
