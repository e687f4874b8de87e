"""lm-eval's ``batch_size``: a number, or ``auto`` (the largest batch that fits in memory).

``auto`` (and lm-eval's ``auto:N``) starts at ``max_batch_size`` (64 unless given, as in
lm-eval's HF model) and halves the batch whenever a forward runs out of memory, retrying the
same work, until it fits; the size found is kept for the rest of the run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import torch

from lit_illada.config.errors import ConfigError

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_MAX_BATCH_SIZE = 64


class BatchSize:
    def __init__(self, value: int | str, max_batch_size: int | str | None = None) -> None:
        text = str(value).strip()
        self.auto = text.startswith("auto")
        if self.auto:
            self.size = _positive(
                max_batch_size if max_batch_size is not None else DEFAULT_MAX_BATCH_SIZE, "max_batch_size"
            )
        else:
            self.size = _positive(text, "batch_size", also="or auto")

    def __repr__(self) -> str:
        return f"auto (now {self.size})" if self.auto else str(self.size)

    def run(self, attempt: Callable[[int], T]) -> T:
        """``attempt(size)``; with ``auto``, retried at half the size after each out-of-memory error."""
        while True:
            try:
                return attempt(self.size)
            except torch.cuda.OutOfMemoryError:
                if not self.auto or self.size == 1:
                    raise
                self.size //= 2
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                log.warning(
                    "batch_size=auto: out of memory; retrying with %d sequences per forward", self.size
                )


def _positive(value, name: str, also: str = "") -> int:
    text = str(value).strip()
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"{name}={value!r}: expected a positive integer{' ' + also if also else ''}")
    return int(text)
