"""Approximate KV caching for diffusion decoding (Fast-dLLM), usable with any policy.

At the first denoiser call of each block the whole sequence runs once and every layer's
keys and values are kept; that forward's logits serve the block's first decoding step.
Later calls in the block recompute only a window and attend to the cached keys elsewhere:

* ``prefix``: the window is the current block and everything after it; the prefix
  (prompt and earlier blocks) comes from the cache.
* ``dual``: the window is the current block only; the masked suffix is cached as well.

Committed tokens outside the window change nothing until the next refresh, which is what
makes this an approximation. The sampler signals blocks through ``start_block``.
"""

from __future__ import annotations

import torch

from lit_illada.sampling.sampler import CACHE_MODES


class CachedDenoiser:
    """Wraps a model with ``prefill`` and ``forward_window`` (lit_illada's Transformer)."""

    def __init__(self, model, mode: str) -> None:
        if mode not in ("prefix", "dual"):
            raise ValueError(f"sampler.cache={mode!r}: choose one of {CACHE_MODES}")
        if not (hasattr(model, "prefill") and hasattr(model, "forward_window")):
            raise TypeError(
                f"sampler.cache={mode} needs a model with a KV cache (lit_illada's Transformer, "
                f"prefill/forward_window); got {type(model).__name__}. Use sampler.cache=none."
            )
        self.model, self.mode = model, mode
        self._block: tuple[int, int] | None = None
        self._stale = True
        self._cache = None
        self._logits: torch.Tensor | None = None

    def start_block(self, start: int, end: int) -> None:
        self._block, self._stale = (start, end), True

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self._stale or self._block is None or self._logits is None or self._logits.shape[:2] != x.shape:
            self._logits, self._cache = self.model.prefill(x)
            self._stale = False
            return self._logits
        start, end = self._block
        stop = end if self.mode == "dual" else x.shape[1]
        # Only [start, stop) is fresh; the sampler reads logits inside the current block only.
        self._logits[:, start:stop] = self.model.forward_window(x[:, start:stop], start, self._cache)
        return self._logits


def wrap_with_cache(denoiser, mode: str):
    """The denoiser the sampler should call for ``sampler.cache=mode``."""
    if mode == "none":
        return denoiser
    return CachedDenoiser(denoiser, mode)
