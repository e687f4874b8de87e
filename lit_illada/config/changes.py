"""What changed between a run's recorded config (``runs/<name>/config.yaml``) and a re-run's.

A re-run with the same ``name=`` resumes the run; settings that differ would make one run of
two configurations without a trace. Three kinds of key are told apart:

- ``RUNTIME_KEYS``: how this process runs, not what it trains (threads, console output, where
  metrics go, how often resume points are saved, where the token cache lives). They may change
  on any resume: with exact resume the trained numbers are the same either way.
- ``LIMIT_KEYS``: where training stops. Changing them is how a run is continued further.
- every other key: the run's definition. A change is refused unless ``resume=force``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# How the process runs, not what it trains (each with the reason it cannot change the weights).
RUNTIME_KEYS = (
    "resume",  # this start's own instruction
    "command_line",  # the overrides as typed; the values they set are compared themselves
    "runs_root",  # where the record is (the same folder may be reached by another path)
    "threads",  # CPU threads: speed only
    "allow_large",  # skips the memory check
    "logger",  # where metrics go (csv, W&B project, mode, ...)
    "choices.logger",
    "trainer.enable_progress_bar",  # console output
    "trainer.enable_model_summary",
    "trainer.log_every_n_steps",  # how often metrics are logged
    "checkpoint",  # how often resume points are saved: resume is exact either way
    "data.num_workers",  # loader processes: the same batches (tests/test_resume.py)
    "data.cache_dir",  # where the token cache lives
    "data.source.cache_dir",
    "num_samples",  # the samples drawn after training, not training itself
    "sample_prompt_length",
    # torch.compile: the same math, fused kernels (rounding-level differences, as threads make)
    "model.compile",
    "parallel.compile",  # model.compile's former name, in configs recorded before the move
    "peak_tflops",  # the denominator of the logged MFU only
)
# Keys added to conf/ after runs were recorded without them, with the value that reproduces what
# those runs did: a recorded run lacking the key resumes when the new config holds that value.
ADDED_KEYS = {
    "optimizer.fused": None,  # torch's default (foreach)
    "objective.trim_padding_fraction": 0.0,  # EOS padding kept whole
}
# Where training stops: raised (or lowered) to continue a run, as README says.
LIMIT_KEYS = ("trainer.max_steps", "trainer.max_epochs", "trainer.max_time")

ABSENT = object()  # a key one of the two configs lacks


@dataclass(frozen=True)
class Change:
    key: str
    old: Any
    new: Any

    @property
    def is_limit(self) -> bool:
        return _matches(self.key, LIMIT_KEYS)

    def __str__(self) -> str:
        return f"{self.key}: {_show(self.old)} -> {_show(self.new)}"


def config_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """The keys whose values differ (runtime-only keys left out), in ``new``'s key order."""
    before, after = flatten(old), flatten(new)
    before = {**{key: value for key, value in ADDED_KEYS.items() if key in after}, **before}
    keys = list(after) + [key for key in before if key not in after]
    return [
        Change(key, before.get(key, ABSENT), after.get(key, ABSENT))
        for key in keys
        if not _matches(key, RUNTIME_KEYS) and before.get(key, ABSENT) != after.get(key, ABSENT)
    ]


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a.b": value}`` for every leaf; lists are values (``optimizer.betas``)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


def _matches(key: str, names: tuple[str, ...]) -> bool:
    return any(key == name or key.startswith(name + ".") for name in names)


def _show(value: Any) -> str:
    """A value as it is written on the command line (``null``, ``true``, ``[0.9,0.95]``)."""
    if value is ABSENT:
        return "(not set)"
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))
