"""The models a sweep's trials start from (``ckpt=``, ``init_from=``), checked before any trial runs.

A path that does not exist, a folder without a model or a file that is not a checkpoint would
fail every trial, each after seconds of imports and each counted toward ``n_trials``. The driver
imports no torch, so this checks what the file system shows, the way the loader
(lit_illada.checkpoints.loader.resolve) finds a model; whether the model suits the trial's
config is checked by the trial itself at its start.

The same paths, made absolute, are part of a study's identity: ``ckpt=runs/a`` and
``ckpt=./runs/a`` name one model, ``ckpt=runs/b`` another.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from lit_illada.checkpoints.run_record import checkpoint_candidates
from lit_illada.sweeping.definition import override_key

MODEL_PATH_KEYS = ("ckpt", "init_from")
NULL = ("", "null", "None", "none", "~")
# What makes a folder a model without a run's checkpoints/: a DCP checkpoint (.metadata), a
# consolidated, imported or Hugging Face model folder (config.json).
MODEL_FOLDER_MARKERS = (".metadata", "config.json")


def value_of(overrides: list[str], key: str) -> str | None:
    """The value ``key`` gets from the overrides (the last one wins, as in Hydra); None when unset or null."""
    values = [o.split("=", 1)[1] for o in overrides if "=" in o and override_key(o) == key]
    if not values or values[-1].strip() in NULL:
        return None
    return values[-1].strip()


def model_path_problem(value: str) -> str | None:
    """Why ``value`` cannot be a model the loader reads, or None when it looks like one."""
    path = Path(value).expanduser()
    if not path.exists():
        return "no such file or run directory"
    if path.is_dir():
        if any((path / marker).is_file() for marker in MODEL_FOLDER_MARKERS):
            return None
        found = next((c for c in checkpoint_candidates(path) if c.exists()), None)
        if found is None:
            return (
                "a folder without a model: expected a run directory (checkpoints/best.ckpt or "
                "checkpoints/last.ckpt), a checkpoint file or a model directory"
            )
        problem = model_path_problem(str(found))
        return None if problem is None else f"{found}: {problem}"
    # torch.save writes a zip archive: an empty, cut-short or text file has no zip directory.
    if not zipfile.is_zipfile(path):
        return (
            "not a checkpoint (a training checkpoint is a zip archive; this file is empty, cut short "
            "or something else)"
        )
    return None


def absolute(overrides: list[str]) -> list[str]:
    """The overrides with every model path made absolute: as a study records what its trials load."""
    out = []
    for override in overrides:
        key = override_key(override)
        if key in MODEL_PATH_KEYS and "=" in override:
            prefix, value = override.split("=", 1)
            if value.strip() not in NULL:
                override = f"{prefix}={Path(value).expanduser().resolve()}"
        out.append(override)
    return out
