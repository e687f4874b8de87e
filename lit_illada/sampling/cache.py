"""Approximate KV caching for diffusion decoding (Fast-dLLM), usable with any policy.

The cache is a component of the sampler (``cache=``): ``NoCache``, ``PrefixCache`` or
``DualCache``; in yaml a ``_target_`` of ``conf/sampler/cache/``, chosen on the command line
with ``sampler/cache=none|prefix|dual``. Its ``wrap`` turns the denoiser of one ``generate``
call into the one the sampler calls.

With ``PrefixCache`` or ``DualCache``, the first denoiser call of each block runs the whole
sequence once and keeps every layer's keys and values; that forward's logits serve the
block's first decoding step. Later calls in the block recompute only a window and attend to
the cached keys elsewhere:

* ``PrefixCache``: the window is the current block and everything after it; the prefix
  (prompt and earlier blocks) comes from the cache.
* ``DualCache``: the window is the current block only; the masked suffix is cached as well.

Committed tokens outside the window change nothing until the next refresh, which is what
makes this an approximation. The sampler signals blocks through ``start_block``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch


class DenoiserCache(ABC):
    """What the sampler calls instead of the denoiser during one ``generate`` call."""

    @abstractmethod
    def wrap(self, denoiser):
        """The denoiser to call for one ``generate`` call (fresh state per call)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class NoCache(DenoiserCache):
    """Every denoiser call runs the whole sequence: exact, the reference behaviour."""

    def wrap(self, denoiser):
        return denoiser


class WindowCache(DenoiserCache):
    """A KV cache refreshed at each block; between refreshes only a window is recomputed."""

    @abstractmethod
    def window_stop(self, end: int, length: int) -> int:
        """End of the recomputed window for the block ``[start, end)`` of a ``length`` sequence."""

    def wrap(self, denoiser):
        return CachedDenoiser(denoiser, self)


class PrefixCache(WindowCache):
    """Recompute the current block and everything after it; the prefix comes from the cache."""

    def window_stop(self, end: int, length: int) -> int:
        return length


class DualCache(WindowCache):
    """Recompute the current block only; prefix and masked suffix come from the cache."""

    def window_stop(self, end: int, length: int) -> int:
        return end


class CachedDenoiser:
    """Wraps a model with ``prefill`` and ``forward_window`` (lit_illada's Transformer)."""

    def __init__(self, model, cache: WindowCache) -> None:
        if not isinstance(cache, WindowCache):
            raise ValueError(f"sampler.cache={cache!r}: CachedDenoiser needs a PrefixCache or DualCache")
        if not (hasattr(model, "prefill") and hasattr(model, "forward_window")):
            raise TypeError(
                f"sampler.cache={cache!r} needs a model with a KV cache (lit_illada's Transformer, "
                f"prefill/forward_window); got {type(model).__name__}. Use sampler/cache=none."
            )
        self.model, self.cache = model, cache
        self._block: tuple[int, int] | None = None
        self._stale = True
        self._kv = None
        self._logits: torch.Tensor | None = None

    def start_block(self, start: int, end: int) -> None:
        self._block, self._stale = (start, end), True

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self._stale or self._block is None or self._logits is None or self._logits.shape[:2] != x.shape:
            self._logits, self._kv = self.model.prefill(x)
            self._stale = False
            return self._logits
        start, end = self._block
        stop = self.cache.window_stop(end, x.shape[1])
        # Only [start, stop) is fresh; the sampler reads logits inside the current block only.
        self._logits[:, start:stop] = self.model.forward_window(x[:, start:stop], start, self._kv)
        return self._logits
