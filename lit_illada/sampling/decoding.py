"""How a trained backbone decodes: by denoising (masked diffusion) or left to right (the AR
baseline). The one place that decides it; objectives are losses and know nothing of generation.

``decoding_for(objective)`` reads how the model was trained (``objective.causal``) once;
everything that generates or scores (training samples, ``generate``, ``evaluate``, tasks,
the lm-eval adapter) asks the returned ``Decoding`` instead of testing a flag.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from lit_illada.sampling.autoregressive import autoregressive_generate
from lit_illada.sampling.result import SampleResult
from lit_illada.sampling.sampler import Denoiser


class Decoding(ABC):
    kind: str  # recorded in results.json: "diffusion" or "autoregressive"
    causal: bool  # the attention the backbone was trained with
    can_infill: bool  # whether it can condition on text after the gap

    def denoiser(self, net) -> Denoiser:
        """ids (B, L) -> logits (B, L, V) with the attention the model was trained with."""
        return lambda ids: net(ids, causal=self.causal)

    @abstractmethod
    def generate(self, net, prompt: torch.Tensor, sampler, generator: torch.Generator | None = None) -> SampleResult:
        """Continue ``prompt`` (B, Lp) by ``sampler.gen_length`` tokens."""


class Denoising(Decoding):
    kind, causal, can_infill = "diffusion", False, True

    def generate(self, net, prompt, sampler, generator=None):
        # The net itself is the denoiser, so a KV-cached policy can use prefill / forward_window.
        return sampler.generate(net, prompt, generator=generator)


class LeftToRight(Decoding):
    kind, causal, can_infill = "autoregressive", True, False

    def generate(self, net, prompt, sampler, generator=None):
        """One token per forward; the sampler contributes only gen_length and temperature."""
        return autoregressive_generate(
            self.denoiser(net), prompt, gen_length=sampler.gen_length,
            temperature=getattr(sampler, "temperature", 0.0), generator=generator,
        )


def decoding_for(objective) -> Decoding:
    """The decoding of a model trained with ``objective``: causal training decodes left to right."""
    return LeftToRight() if getattr(objective, "causal", False) else Denoising()
