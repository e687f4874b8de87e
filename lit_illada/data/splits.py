"""Deterministic train/val/test assignment from a stable key.

The split of an item depends only on its key (a relative path, a document index), never on
iteration order, process or Python's salted ``hash()``. Adding files moves no other file
between splits.
"""

from __future__ import annotations

import hashlib

SPLITS = ("train", "val", "test")


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is unknown; choose one of {SPLITS}")


def check_fractions(val_fraction: float, test_fraction: float, key_prefix: str) -> None:
    """Fail at start-up on fractions that leave no training data."""
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{key_prefix}.{name}={value!r}: must be in [0, 1)")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"{key_prefix}.val_fraction + {key_prefix}.test_fraction = "
            f"{val_fraction + test_fraction} leaves nothing for training; keep the sum below 1"
        )


def unit_interval_hash(key: str) -> float:
    """Map ``key`` to [0, 1), identically on every machine and Python version."""
    digest = hashlib.sha1(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(key: str, val_fraction: float, test_fraction: float) -> str:
    """The split that ``key`` belongs to: val below ``val_fraction``, then test, then train."""
    position = unit_interval_hash(key)
    if position < val_fraction:
        return "val"
    if position < val_fraction + test_fraction:
        return "test"
    return "train"
