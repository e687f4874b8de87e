"""docstring_to_body: write a function's body from its signature and docstring."""

from __future__ import annotations

import ast
import math

import torch

from lit_illada.data import StdlibFunctionSFTSource
from lit_illada.evaluation.metrics import (
    clip_to_unit,
    edit_similarity,
    exact_match,
    mean_interval,
    normalize_answer,
    rate_with_interval,
    repetition_rate,
)
from lit_illada.evaluation.tasks.base import EvalModel, Task

REPETITION_N = 4  # repetition_rate of the generated token ids: share of repeated 4-grams


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
        functions = (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))
        function = next(functions, None)
        return function is not None and len(function.body) >= 2
    return False


def score_example(prompt: str, completion: str, reference: str) -> dict[str, float]:
    """One example's scores, each in [0, 1]; the completion is compared with the FULL reference.

    Both strings go through ``normalize_answer`` (surrounding whitespace stripped) first, so a
    whitespace-only completion is empty. ``exact_match``: the two are equal. ``edit_similarity``:
    ``metrics.edit_similarity`` (1 - Levenshtein / longer length), so an empty completion scores
    0.0 against any non-empty reference. ``parses``: ``body_parses`` (a statement beyond the
    docstring). ``empty``: the normalised completion is empty.
    """
    prediction, truth = normalize_answer(completion), normalize_answer(reference)
    return {
        "exact_match": exact_match(prediction, truth),
        "edit_similarity": edit_similarity(prediction, truth),
        "parses": float(body_parses(prompt, completion)),
        "empty": float(prediction == ""),
    }


def summarize(scores: list[dict[str, float]]) -> dict:
    """The task's quality metrics over the per-example ``scores`` (``score_example``'s dicts).

    ``exact_match`` and ``parse_rate`` are shares of examples with their Wilson 95% interval
    (``<key>_low``, ``<key>_high``); ``edit_similarity`` is the mean over examples with a t-based
    95% interval over examples, clipped to [0, 1] (None for a single example); ``empty_rate``:
    the share of empty completions.
    """
    n = len(scores)
    if n == 0:
        raise ValueError("docstring_to_body: no scored example")

    def total(key: str) -> float:
        return math.fsum(score[key] for score in scores)

    similarity, low, high = mean_interval([score["edit_similarity"] for score in scores])
    return {
        **rate_with_interval("exact_match", total("exact_match"), n),
        **rate_with_interval("parse_rate", total("parses"), n),
        "edit_similarity": similarity,
        "edit_similarity_low": clip_to_unit(low),
        "edit_similarity_high": clip_to_unit(high),
        "empty_rate": total("empty") / n,
    }


class DocstringToBody(Task):
    """Generation with the configured sampler; reports quality next to NFE and latency.

    Quality (``summarize``): exact_match and parse_rate with Wilson 95% intervals, edit_similarity
    against the FULL reference with a t interval over examples, empty_rate; and from the token ids,
    repetition_rate (share of repeated 4-grams) and reference_fits_rate (references no longer than
    sampler.gen_length tokens: the ceiling on exact_match)."""

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
        nfe = seconds = tokens = 0.0
        scores, repetition, fits = [], [], []
        for prompt, truth in examples:
            ids = torch.tensor([model.encode_prompt(prompt)], device=next(model.net.parameters()).device)
            result = model.generate(ids, generator)
            generated = result.generated[0].tolist()
            generated = generated[: generated.index(eos)] if eos in generated else generated
            scores.append(score_example(prompt, model.tokenizer.decode(generated), truth))
            repetition.append(repetition_rate(generated, REPETITION_N))
            # A reference longer than the generation budget cannot be matched in full: the
            # share that fits bounds exact_match from above (edit_similarity pays for the rest).
            fits.append(len(model.tokenizer.encode(truth)) <= model.sampler.gen_length)
            nfe += result.nfe
            seconds += result.seconds
            tokens += result.generated_tokens
        n = len(examples)
        return {
            **summarize(scores),
            "repetition_rate": sum(repetition) / n,
            "reference_fits_rate": sum(fits) / n,
            "nfe": nfe / n,
            "seconds_per_sample": seconds / n,
            "tokens_per_s": tokens / seconds if seconds else 0.0,
            "n": n,
        }
