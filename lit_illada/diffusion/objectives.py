"""Training objectives over one backbone: masked diffusion and the autoregressive baseline.

An objective takes the model and a batch and returns the loss plus the statistics the
module logs. Both objectives share masking scope, truncation and normalization, so that
"diffusion vs AR at equal compute" differs only in what the objective does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lit_illada.diffusion.normalization import Normalization, PerToken
from lit_illada.diffusion.schedules import NoiseSchedule
from lit_illada.diffusion.weighting import ElboWeighting


@dataclass
class ObjectiveOutput:
    loss: torch.Tensor  # what is minimized (training weighting)
    nll: torch.Tensor  # NLL bound per eligible token, in nats (exact NLL for AR)
    n_predicted: int  # positions where a loss is taken (masked, or next-token targets)
    n_correct: torch.Tensor  # argmax hits among those (a tensor: no device sync per step)
    n_tokens: int  # tokens that went through the backbone

    @property
    def accuracy(self) -> torch.Tensor:
        return self.n_correct / max(self.n_predicted, 1)


def _output(loss: torch.Tensor, nll: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor, n_tokens: int):
    return ObjectiveOutput(
        loss=loss,
        nll=nll,
        n_predicted=int(targets.numel()),
        n_correct=(logits.detach().argmax(-1) == targets).sum(),
        n_tokens=n_tokens,
    )


def padded_content_length(ids: torch.Tensor, prompt_mask: torch.Tensor, eos_id: int) -> int:
    """The shortest cut of SFT rows ``[BOS] prompt answer EOS EOS...`` that keeps every row's
    answer and its first EOS (a row with no EOS after its prompt, cut by ``seq_len``, keeps all)."""
    pad = (ids == eos_id) & ~prompt_mask
    ends = torch.where(pad.any(dim=1), pad.int().argmax(dim=1) + 1, ids.shape[1])
    return int(ends.max())


class Objective:
    """Shared plumbing: eligibility, random-length truncation, normalization.

    ``normalize`` is a ``normalization.Normalization`` (default ``PerToken()``; LLaDA SFT uses
    ``PerAnswerLength()``). ``trim_padding_fraction``: the share of SFT batches whose EOS
    padding is cut to a random length (every row keeps its EOS): rows padded to one fixed
    length teach a small model to stop only on a canvas of that length.
    """

    def __init__(
        self,
        masking,
        mask_id: int,
        normalize: Normalization | None = None,
        truncate_fraction: float = 0.01,
        trim_padding_fraction: float = 0.0,
        eos_id: int | None = None,
    ) -> None:
        normalize = PerToken() if normalize is None else normalize
        if not callable(normalize):
            raise ValueError(
                f"objective.normalize={normalize!r}: expected a normalization such as "
                "normalization.PerToken(); on the command line objective/normalize=tokens|answer_length"
            )
        if not 0.0 <= truncate_fraction <= 1.0:
            raise ValueError(f"objective.truncate_fraction={truncate_fraction}: must be in [0, 1]")
        if not 0.0 <= trim_padding_fraction <= 1.0:
            raise ValueError(f"objective.trim_padding_fraction={trim_padding_fraction}: must be in [0, 1]")
        if trim_padding_fraction > 0 and eos_id is None:
            raise ValueError("objective.trim_padding_fraction needs the tokenizer's eos_id")
        self.masking = masking
        self.mask_id = mask_id
        self.normalize = normalize
        self.truncate_fraction = truncate_fraction
        self.trim_padding_fraction, self.eos_id = trim_padding_fraction, eos_id

    def _prepare(
        self, batch: dict[str, torch.Tensor], generator: torch.Generator | None, training: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        ids, eligible = batch["input_ids"], self.masking(batch)
        if training and self.truncate_fraction > 0:
            # LLaDA: in a small fraction of batches, cut to a random length in [1, L]
            # so the model also sees short sequences.
            draw = torch.rand(2, device=ids.device, generator=generator)
            if draw[0] < self.truncate_fraction:
                length = 1 + int(draw[1] * ids.shape[1])
                ids, eligible = ids[:, :length], eligible[:, :length]
        if training and self.trim_padding_fraction > 0 and "prompt_mask" in batch:
            draw = torch.rand(2, device=ids.device, generator=generator)
            if draw[0] < self.trim_padding_fraction:
                shortest = padded_content_length(ids, batch["prompt_mask"][:, : ids.shape[1]], self.eos_id)
                length = shortest + int(draw[1] * (ids.shape[1] - shortest + 1))
                ids, eligible = ids[:, :length], eligible[:, :length]
        return ids, eligible

    def _reduce(self, per_token: torch.Tensor, where: torch.Tensor, eligible: torch.Tensor) -> torch.Tensor:
        """Sum per-token values (given at positions ``where``) and normalize (``self.normalize``)."""
        return self.normalize(per_token, where, eligible)


class DiffusionObjective(Objective):
    """Absorbing-state masked diffusion (LLaDA): mask with probability p(t), predict the originals."""

    causal = False

    def __init__(
        self,
        noise: NoiseSchedule,
        weighting,
        masking,
        mask_id: int,
        normalize: Normalization | None = None,
        truncate_fraction: float = 0.01,
        trim_padding_fraction: float = 0.0,
        eos_id: int | None = None,
    ) -> None:
        super().__init__(masking, mask_id, normalize, truncate_fraction, trim_padding_fraction, eos_id)
        self.noise = noise
        self.weighting = weighting
        self._elbo = ElboWeighting()

    def __call__(
        self,
        model,
        batch: dict[str, torch.Tensor],
        t: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        training: bool = True,
    ) -> ObjectiveOutput:
        ids, eligible = self._prepare(batch, generator, training)
        B, L = ids.shape
        if t is None:
            t = self.noise.sample_t(B, device=ids.device, generator=generator)
        p = self.noise.mask_prob(t)
        masked = eligible & (torch.rand(B, L, device=ids.device, generator=generator) < p[:, None])
        noisy = ids.masked_fill(masked, self.mask_id)

        logits = model(noisy, logits_at=masked)  # (N, V): the head runs only where a loss is taken
        targets = ids[masked]
        ce = F.cross_entropy(logits.float(), targets, reduction="none")

        row = masked.nonzero()[:, 0]
        train_w = self.weighting(t, self.noise)[row]
        elbo_w = self._elbo(t, self.noise)[row]
        loss = self._reduce(ce * train_w, masked, eligible)
        nll = self._reduce(ce.detach() * elbo_w, masked, eligible)
        return _output(loss, nll, logits, targets, B * L)


class AutoregressiveObjective(Objective):
    """The AR baseline: the same backbone with a causal mask and shifted cross-entropy.

    Position i predicts token i+1. The masking scope decides which targets count (SFT:
    answer only), so diffusion and AR train on the same tokens.
    """

    causal = True

    def __init__(
        self,
        masking,
        mask_id: int,
        normalize: Normalization | None = None,
        truncate_fraction: float = 0.01,
        trim_padding_fraction: float = 0.0,
        eos_id: int | None = None,
    ) -> None:
        super().__init__(masking, mask_id, normalize, truncate_fraction, trim_padding_fraction, eos_id)

    def __call__(
        self,
        model,
        batch: dict[str, torch.Tensor],
        t: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        training: bool = True,
    ) -> ObjectiveOutput:
        ids, eligible = self._prepare(batch, generator, training)
        B, L = ids.shape
        target_mask = torch.zeros_like(eligible)
        target_mask[:, 1:] = eligible[:, 1:]  # the first token has no left context
        predict_from = torch.zeros_like(eligible)
        predict_from[:, :-1] = target_mask[:, 1:]

        logits = model(ids, causal=True, logits_at=predict_from)
        targets = ids[target_mask]
        ce = F.cross_entropy(logits.float(), targets, reduction="none")
        loss = self._reduce(ce, target_mask, target_mask)
        return _output(loss, loss.detach(), logits, targets, B * L)
