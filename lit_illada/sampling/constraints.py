"""Logit constraints: tokens the model may not predict at a position.

A constraint rewrites the (guided) logits before anything is derived from them, i.e. before
the argmax / Gumbel-max prediction and before the softmax of every score. A banned token
can therefore neither be written nor hold probability mass. (The LLaDA reference's EOS
suppression only lowers the confidence and can still write EOS; this module does not.)

Constraints never modify the denoiser's tensor in place: a KV-cached denoiser keeps its
logits between calls.
"""

from __future__ import annotations

from typing import Protocol

import torch


class Constraint(Protocol):
    def __call__(self, logits: torch.Tensor, x: torch.Tensor, prompt_length: int) -> torch.Tensor:
        """``logits`` ``(B, L, V)`` for the current ids ``x`` ``(B, L)``, with bans applied."""


class SuppressToken:
    """Forbid one token everywhere (``suppress_eos``: force the answer to fill its length)."""

    def __init__(self, token_id: int) -> None:
        self.token_id = token_id

    def __call__(self, logits: torch.Tensor, x: torch.Tensor, prompt_length: int) -> torch.Tensor:
        return logits.index_fill(-1, torch.tensor([self.token_id], device=logits.device), -torch.inf)


class NoRepeatNGram:
    """Forbid a token where it would complete an n-gram the answer already contains.

    Only the generated region counts (the answer may quote the prompt). A window of ``n``
    consecutive generated positions is checked when exactly one of them is still masked:
    if its ``n - 1`` committed tokens match a fully committed n-gram elsewhere in the answer,
    the token that would complete the copy is banned at the masked position, so the model
    predicts its next choice there instead. Banning the token (as HF's
    ``no_repeat_ngram_size`` does) rather than lowering the position's confidence is what
    makes this a mitigation: a model stuck in a loop predicts the repeat at every position,
    and a confidence penalty would only postpone committing it.

    Guarantees and limits:

    * exact when one token is committed per step; tokens committed in the same step are
      predicted jointly and are not checked against each other;
    * ``exempt`` (the EOS id) is never banned: EOS padding repeats by design;
    * at least one real token stays allowed per position: where the bans would leave
      nothing but [MASK], that position keeps its unconstrained logits.
    """

    def __init__(self, n: int, mask_id: int, exempt: int | None = None) -> None:
        self.n, self.mask_id, self.exempt = n, mask_id, exempt

    def __call__(self, logits: torch.Tensor, x: torch.Tensor, prompt_length: int) -> torch.Tensor:
        rows, positions, tokens = self.banned(x, prompt_length)
        if self.exempt is not None:
            keep = tokens != self.exempt
            rows, positions, tokens = rows[keep], positions[keep], tokens[keep]
        if rows.numel() == 0:
            return logits
        banned = logits.index_put(
            (rows, positions, tokens), torch.tensor(-torch.inf, dtype=logits.dtype, device=logits.device)
        )
        finite = banned.isfinite()
        only_mask_left = finite.sum(dim=-1) == finite[..., self.mask_id].long()
        return torch.where(only_mask_left.unsqueeze(-1), logits, banned)

    def banned(self, x: torch.Tensor, start: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(row, position, token)`` triples to ban, for the answer ``x[:, start:]``.

        Vectorised over the few windows with exactly one mask (near the edges of committed
        runs), each compared with every window of the row.
        """
        empty = torch.empty(0, dtype=torch.long, device=x.device)
        if x.shape[1] - start < self.n:
            return empty, empty, empty
        windows = x[:, start:].unfold(1, self.n, 1)  # (B, W, n)
        masked = windows == self.mask_id
        complete = ~masked.any(dim=-1)  # (B, W)
        row, window = (masked.sum(dim=-1) == 1).nonzero(as_tuple=True)  # K windows to check
        if row.numel() == 0:
            return empty, empty, empty
        slot = masked[row, window].long().argmax(dim=-1)  # (K,) offset of the masked position
        others = torch.arange(self.n, device=x.device) != slot[:, None]  # (K, n)
        same = (windows[row] == windows[row, window][:, None, :]) | ~others[:, None, :]
        hit, match = (same.all(dim=-1) & complete[row]).nonzero(as_tuple=True)  # (K, W) pairs
        return row[hit], start + window[hit] + slot[hit], windows[row[hit], match, slot[hit]]
