"""Generation tasks: a prompt (and, for infilling, the text after the answer) -> the answer.

The configured sampler writes the answer; the task reports exact match with its Wilson 95%
interval, edit similarity, NFE, latency, tokens/s, the positions denoised and the repetition
rate of what was written. Subclasses only say where the examples come from (a synthetic task,
a user's JSONL file).

Generation length. Unless ``sampler.gen_length`` was given on the command line, it follows
the answers: the longest answer's token count plus ``margin`` (room for EOS), as one block,
with ``steps`` (for fixed-schedule samplers) equal to it unless ``sampler.steps`` was given.
An infilling example (non-empty ``suffix``) has a gap of exactly its answer's token count
between prompt and suffix, denoised by the same policy: every forward sees the suffix.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections import defaultdict
from statistics import fmean

import torch

from lit_illada.data.synthetic import TaskExample
from lit_illada.evaluation.metrics import edit_similarity, exact_match, rate_with_interval, repetition_rate
from lit_illada.evaluation.tasks.base import EvalModel, Task


class GenerationTask(Task):
    """Examples with ``prompt``, ``answer`` and optional ``suffix``, answered by the sampler."""

    def __init__(self, limit: int = 200, seed: int = 0, margin: int = 2, batch_size: int = 16) -> None:
        super().__init__(limit, seed)
        if margin < 0 or batch_size < 1:
            raise ValueError(f"task margin={margin} must be >= 0 and batch_size={batch_size} >= 1")
        self.margin, self.batch_size = margin, batch_size

    @abstractmethod
    def examples(self) -> list[TaskExample]:
        """The examples, at most ``limit`` of them."""

    def is_correct(self, example: TaskExample, completion: str) -> bool:
        return exact_match(completion, example.answer) == 1.0

    def run(self, model: EvalModel) -> dict:
        examples = self.examples()[: self.limit]
        if not examples:
            raise ValueError(f"{self.name}: no examples")
        if any(e.suffix for e in examples) and not model.decoding.can_infill:
            return {"skipped": f"not applicable: a {model.decoding.kind} model cannot condition on a suffix", "n": 0}
        tokenizer = model.tokenizer
        prompts = [model.encode_prompt(e.prompt) for e in examples]
        answers = [tokenizer.encode(e.answer) for e in examples]
        suffixes = [tokenizer.encode(e.suffix) if e.suffix else [] for e in examples]
        if any(not p for p in prompts):
            raise ValueError(f"{self.name}: an empty prompt (and no BOS): give the prompt at least one token")
        longest = max(len(a) for a in answers)
        device = next(model.net.parameters()).device
        generator = torch.Generator(device).manual_seed(self.seed)

        groups: dict[tuple[int, int, int], list[int]] = defaultdict(list)
        for i, (prompt, answer, suffix) in enumerate(zip(prompts, answers, suffixes, strict=True)):
            gap = len(answer) if suffix else 0  # an infill's gap is its answer's length
            groups[(len(prompt), len(suffix), gap)].append(i)
        rows: dict[int, dict] = {}
        for (_, suffix_length, gap), members in groups.items():
            sampler = model.sampler_for(gap if suffix_length else longest + self.margin)
            for start in range(0, len(members), self.batch_size):
                batch = members[start : start + self.batch_size]
                rows.update(self._generate(model, sampler, batch, prompts, suffixes, examples, generator, device))
        return self.summarize([rows[i] for i in range(len(examples))], sampler=repr(sampler))

    def _generate(self, model, sampler, batch, prompts, suffixes, examples, generator, device) -> dict[int, dict]:
        prompt = torch.tensor([prompts[i] for i in batch], device=device)
        suffix = torch.tensor([suffixes[i] for i in batch], device=device, dtype=torch.long)
        net = model.net
        if suffix.shape[1]:
            denoiser = model.denoiser
            net = lambda ids: denoiser(torch.cat([ids, suffix], dim=1))[:, : ids.shape[1]]  # noqa: E731
        started = time.perf_counter()
        result = model.decoding.generate(net, prompt, sampler, generator)
        seconds = time.perf_counter() - started
        eos = model.tokenizer.eos_id
        out = {}
        for row, index in enumerate(batch):
            ids = result.generated[row].tolist()
            if not suffix.shape[1] and eos in ids:
                ids = ids[: ids.index(eos)]
            completion = model.tokenizer.decode(ids)
            example = examples[index]
            out[index] = {
                "correct": self.is_correct(example, completion),
                "similarity": edit_similarity(completion.strip(), example.answer.strip()),
                "repetition": repetition_rate(ids),
                "nfe": result.nfe,
                "seconds": seconds / len(batch),
                "denoised": sum(result.committed_per_step) / len(batch),  # positions written per answer
                "tokens": len(ids),
            }
        return out

    def summarize(self, rows: list[dict], sampler: str = "") -> dict:
        n = len(rows)
        seconds = sum(r["seconds"] for r in rows)
        return {
            **rate_with_interval("exact_match", sum(r["correct"] for r in rows), n),
            "edit_similarity": fmean(r["similarity"] for r in rows),
            "repetition_rate": fmean(r["repetition"] for r in rows),
            "nfe": fmean(r["nfe"] for r in rows),
            "positions_denoised": fmean(r["denoised"] for r in rows),
            "answer_tokens": fmean(r["tokens"] for r in rows),
            "seconds_per_sample": seconds / n,
            "tokens_per_s": sum(r["tokens"] for r in rows) / seconds if seconds else 0.0,
            "n": n,
            "sampler": sampler,  # as sized for this task's answers
        }
