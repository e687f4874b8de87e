"""Variable-length generation (iLLaDA): append blocks of masks until the answer ends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from lit_illada.sampling.policies import ConfidenceSampler
from lit_illada.sampling.sampler import Sampler, SamplingRun


class VariableLengthSampler(Sampler):
    """Generation of unknown length: append a block, let ``inner`` unmask it, stop at EOS.

    Each round appends ``block_length`` masks and runs the inner policy on that block. The
    denoiser sees only the prompt and the blocks so far, so a short answer costs fewer and
    cheaper forwards than a fixed ``gen_length`` canvas. A row is done once EOS is committed
    in its answer; the loop stops when every row is done or ``gen_length`` (the maximum) is
    reached.

    Rows finish at different times, and the batch goes on together. A finished row's later
    blocks are filled with EOS, not masks, so it commits nothing more. On return everything
    after a row's first EOS is EOS and the answer is padded with EOS to ``gen_length``, so
    ``tokens`` is ``(B, Lp + gen_length)`` as for every sampler and no mask is left.

    Statistics are what was spent: ``nfe`` counts the batched denoiser calls made and
    ``committed_per_step`` every position the inner policy wrote, including any written
    after a row's first EOS in its last block (work done, then discarded). The padding
    counts as nothing.

    Args:
        inner: builds the policy for each block and is called with this sampler's knobs:
            a class (``ThresholdSampler``) or a ``functools.partial`` holding only that
            policy's own knobs (``threshold=0.9``; in Hydra, ``_partial_: true``).
        steps: for a scheduled inner policy (``ConfidenceSampler``, the default), its step
            count as if the whole ``gen_length`` were generated: each block gets
            ``steps / (gen_length / block_length)`` steps. ``None`` for an adaptive inner
            policy (``ThresholdSampler``, ...), which takes no steps; it is passed on only
            when set.
        **knobs: the ``Sampler`` knobs, passed on to ``inner``. ``gen_length`` is the
            maximum answer length; ``eos_id`` is required by ``generate``. (It is checked
            there, not here, so that configs compose before the tokenizer is known.)
    """

    KNOBS = ("inner",)  # the inner policy's repr already lists every shared knob
    SHARED = Sampler.KNOBS + ("steps",)
    """Knobs set on this sampler and passed on to ``inner``, never set on ``inner`` itself."""

    def __init__(
        self, *, inner: Callable[..., Sampler] = ConfidenceSampler, steps: int | None = None, **knobs: Any
    ) -> None:
        super().__init__(**knobs)
        if self.suppress_eos:
            raise ValueError(
                "sampler.suppress_eos=true contradicts variable-length generation, which stops "
                "at EOS: the answer would always run to sampler.gen_length. Set it to false"
            )
        shared = sorted(set(getattr(inner, "keywords", {})) & set(self.SHARED))
        if shared:
            raise ValueError(
                f"{', '.join(f'sampler.inner.{name}' for name in shared)}: set these on sampler "
                "instead; the inner policy receives every shared knob from the variable-length sampler"
            )
        self.inner = inner(**knobs) if steps is None else inner(steps=steps, **knobs)
        if not isinstance(self.inner, Sampler) or isinstance(self.inner, VariableLengthSampler):
            raise TypeError(
                f"sampler.inner must build a fixed-block policy (ConfidenceSampler, ThresholdSampler, "
                f"...); got {type(self.inner).__name__}"
            )

    def decode(self, run: SamplingRun) -> None:
        if self.eos_id is None:
            raise ValueError(
                "sampler.eos_id is null, but variable-length generation stops at EOS; "
                "pass sampler.eos_id=<the tokenizer's EOS id>"
            )
        done = torch.zeros(run.x.shape[0], dtype=torch.bool, device=run.x.device)
        while run.x.shape[1] - run.prompt_length < self.gen_length and not done.all():
            start, end = run.x.shape[1], run.x.shape[1] + self.block_length
            block = torch.where(done, self.eos_id, self.mask_id)[:, None].expand(-1, self.block_length)
            run.x = torch.cat([run.x, block], dim=1)
            self.start_block(run, start, end)
            self.decode_block(run, start, end)
            done |= (run.x[:, start:end] == self.eos_id).any(dim=1)
        run.x = self.pad_after_eos(run.x, run.prompt_length)

    def decode_block(self, run: SamplingRun, start: int, end: int) -> None:
        self.inner.decode_block(run, start, end)

    def pad_after_eos(self, x: torch.Tensor, prompt_length: int) -> torch.Tensor:
        """EOS after each row's first EOS in the answer, and EOS up to ``gen_length``."""
        answer = x[:, prompt_length:]
        answer = answer.masked_fill((answer == self.eos_id).cumsum(dim=1) > 0, self.eos_id)
        padding = answer.new_full((x.shape[0], self.gen_length - answer.shape[1]), self.eos_id)
        return torch.cat([x[:, :prompt_length], answer, padding], dim=1)
