"""infill: fill a masked middle span of held-out code, seeing both sides."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import torch

from lit_illada.evaluation.metrics import rate_with_interval
from lit_illada.evaluation.tasks.base import EvalModel, Task


def score_example(prediction: Sequence[int], reference: Sequence[int]) -> dict[str, float]:
    """One window's scores. ``token_accuracy``: the share of the reference span's positions
    whose predicted id equals the reference id (a prediction shorter than the reference counts
    its missing positions wrong; extra predicted ids are ignored). ``exact_span``: 1.0 if every
    position is right, else 0.0."""
    if not reference:
        raise ValueError("infill: an empty reference span has no token to score")
    right = sum(p == r for p, r in zip(prediction, reference, strict=False))  # stops at the shorter
    return {"token_accuracy": right / len(reference), "exact_span": float(right == len(reference))}


def summarize(scores: list[dict[str, float]], span: int) -> dict:
    """``token_accuracy``: the mean over windows of ``score_example``'s token accuracy (all spans
    have the same length, so it is also the share of right tokens); ``exact_span``: the share of
    windows filled exactly. Each with a Wilson 95% interval counted over WINDOWS, n = windows:
    for token accuracy the successes are the sum of the windows' shares. Tokens of one window
    are not independent draws, so n = windows·span tokens would make the interval too narrow;
    counting windows is the conservative (never too narrow) choice."""
    n = len(scores)
    if n == 0:
        raise ValueError("infill: no scored window")
    return {
        **rate_with_interval("token_accuracy", math.fsum(s["token_accuracy"] for s in scores), n),
        **rate_with_interval("exact_span", math.fsum(s["exact_span"] for s in scores), n),
        "n": n,
        "n_tokens": n * span,
    }


class Infill(Task):
    """Token accuracy on the span (and the share of spans filled exactly). Decoding commits the
    most confident masked position of the span each step (LLaDA's low-confidence order, one
    token per step), so the model uses the right-hand context that an autoregressive model
    cannot see; AR checkpoints skip it."""

    name = "infill"

    def __init__(self, limit: int = 100, seed: int = 0, side: int = 64, span: int = 16) -> None:
        super().__init__(limit, seed)
        self.side, self.span = side, span

    def windows(self, model: EvalModel) -> torch.Tensor:
        rng = random.Random(self.seed)
        width = 2 * self.side + self.span
        texts = [t for t in self.held_out_files() if len(t.encode()) > width * 2]
        rows = []
        while len(rows) < self.limit:
            ids = model.tokenizer.encode(rng.choice(texts))
            if len(ids) <= width:
                continue
            start = rng.randrange(len(ids) - width)
            rows.append(ids[start : start + width])
        return torch.tensor(rows)

    @torch.no_grad()
    def run(self, model: EvalModel) -> dict:
        if not model.decoding.can_infill:
            kind = model.decoding.kind
            return {"skipped": f"not applicable: a {kind} model cannot condition on the right-hand side"}
        truth = self.windows(model).to(next(model.net.parameters()).device)
        x = truth.clone()
        span = slice(self.side, self.side + self.span)
        x[:, span] = model.tokenizer.mask_id
        rows = torch.arange(x.shape[0], device=x.device)
        for _ in range(self.span):
            probs = model.denoiser(x)[:, span].float().softmax(-1)
            confidence, prediction = probs.max(-1)
            confidence = confidence.masked_fill(x[:, span] != model.tokenizer.mask_id, -1.0)
            position = confidence.argmax(-1)
            x[rows, self.side + position] = prediction[rows, position]
        predicted, reference = x[:, span].tolist(), truth[:, span].tolist()
        scores = [score_example(p, r) for p, r in zip(predicted, reference, strict=True)]
        return {**summarize(scores, self.span), "span": self.span, "nfe": self.span}
