"""Where the Hydra config tree and the sweep files live, installed or in a source checkout.

Imports nothing heavy: the sweep driver and ``analysis`` use it without torch or Hydra.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent


def _shipped(name: str) -> Path:
    """``lit_illada/<name>`` when installed (package data), else ``<checkout>/<name>``."""
    inside = PACKAGE / name
    return inside if inside.is_dir() else PACKAGE.parent / name


CONF_DIR = _shipped("conf")
SWEEPS_DIR = _shipped("sweeps")
