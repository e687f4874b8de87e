"""infill: fill a masked middle span of held-out code, seeing both sides."""

from __future__ import annotations

import random

import torch

from lit_illada.evaluation.tasks.base import EvalModel, Task


class Infill(Task):
    """Token accuracy on the span. Decoding commits the most confident masked position of
    the span each step (LLaDA's low-confidence order, one token per step), so the model uses
    the right-hand context that an autoregressive model cannot see; AR checkpoints skip it."""

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
            return {"skipped": f"not applicable: a {model.decoding.kind} model cannot condition on the right-hand side"}
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
        accuracy = (x[:, span] == truth[:, span]).float().mean().item()
        return {"token_accuracy": accuracy, "n": truth.shape[0], "span": self.span, "nfe": self.span}
