"""docstring_to_body: write a function's body from its signature and docstring."""

from __future__ import annotations

import ast
import difflib

import torch

from lit_illada.data import StdlibFunctionSFTSource
from lit_illada.evaluation.tasks.base import EvalModel, Task


def body_parses(prompt: str, completion: str) -> bool:
    """The body parses and adds at least one statement after the docstring.

    A docstring alone is a valid body, so whitespace-only completions do not count. The
    last line may be cut by the length limit, so it is also tried without it.
    """
    lines = completion.split("\n")
    for text in (completion, "\n".join(lines[:-1])):
        try:
            tree = ast.parse(prompt + text)
        except SyntaxError:
            continue
        function = next((n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))), None)
        return function is not None and len(function.body) >= 2
    return False


class DocstringToBody(Task):
    """Generation with the configured sampler; reports quality next to NFE and latency."""

    name = "docstring_to_body"

    def examples(self, model: EvalModel) -> list[tuple[str, str]]:
        room = model.max_seq_len - model.sampler.gen_length
        pairs = [(e.prompt, e.response) for e in StdlibFunctionSFTSource().examples("test")]
        pairs = [p for p in pairs if len(model.encode_prompt(p[0])) <= room]
        step = max(len(pairs) // self.limit, 1)
        return pairs[::step][: self.limit]

    def run(self, model: EvalModel) -> dict:
        examples = self.examples(model)
        if not examples:
            raise ValueError("docstring_to_body: no held-out function fits max_seq_len - sampler.gen_length")
        eos = model.tokenizer.eos_id
        generator = torch.Generator().manual_seed(self.seed)
        exact = parsed = 0
        similarity = nfe = seconds = tokens = 0.0
        for prompt, truth in examples:
            ids = torch.tensor([model.encode_prompt(prompt)], device=next(model.net.parameters()).device)
            result = model.generate(ids, generator)
            generated = result.generated[0].tolist()
            generated = generated[: generated.index(eos)] if eos in generated else generated
            completion = model.tokenizer.decode(generated)
            reference = truth[: len(completion)] if len(completion) < len(truth) else truth
            exact += int(completion.strip() == truth.strip())
            parsed += int(body_parses(prompt, completion))
            similarity += difflib.SequenceMatcher(None, completion, reference).ratio()
            nfe += result.nfe
            seconds += result.seconds
            tokens += result.generated_tokens
        n = len(examples)
        return {
            "exact_match": exact / n,
            "parse_rate": parsed / n,
            "edit_similarity": similarity / n,
            "nfe": nfe / n,
            "seconds_per_sample": seconds / n,
            "tokens_per_s": tokens / seconds if seconds else 0.0,
            "n": n,
        }
