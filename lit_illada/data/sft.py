"""Supervised fine-tuning pairs: where they come from and how they become fixed-length rows.

A row is ``[BOS] prompt response [EOS] [EOS] ...`` of exactly ``seq_len`` tokens. As in
LLaDA, the EOS padding belongs to the answer: the model is trained on it and so learns
where to stop. ``prompt_mask`` is True on BOS and the prompt, the positions that an
``sft_response`` masking scope never masks.

Chat records are rendered with ``CHAT_TURN_TEMPLATE``::

    <|system|>
    You are terse.
    <|user|>
    Hi
    <|assistant|>

then the last assistant message is the response.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from lit_illada.data.cache import atomic_file, default_cache_dir
from lit_illada.data.corpora import Corpus, PyStdlibCorpus
from lit_illada.data.python_functions import docstring_function_pairs
from lit_illada.data.splits import SPLITS, check_fractions, check_split, split_of
from lit_illada.data.tokenizers import Tokenizer

CHAT_TURN_TEMPLATE = "<|{role}|>\n{content}\n"


@dataclass(frozen=True)
class SFTExample:
    prompt: str
    response: str
    origin: str | None = field(default=None, compare=False)  # "<file>:<line>", for error messages


@runtime_checkable
class SFTSource(Protocol):
    """Yields examples. A source with ``has_splits`` answers ``examples("train"|"val"|"test")``;
    one without yields everything from ``examples()`` and the caller splits by index."""

    has_splits: bool

    def examples(self, split: str | None = None) -> Iterator[SFTExample]: ...


class JsonlSFTSource:
    """One JSON object per line: ``{"prompt": ..., "response": ...}`` (field names
    configurable) or a chat ``{"messages": [{"role": ..., "content": ...}, ...]}``.

    In a chat, the last assistant message is the response; the messages before it, followed
    by an ``<|assistant|>`` header, form the prompt. Messages after it are ignored.
    """

    has_splits = False

    def __init__(self, path: str, prompt_field: str = "prompt", response_field: str = "response") -> None:
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise FileNotFoundError(f"data.source.path={path!r}: no such file")
        self.prompt_field = prompt_field
        self.response_field = response_field

    def examples(self, split: str | None = None) -> Iterator[SFTExample]:
        if split is not None:
            raise ValueError("JsonlSFTSource has no splits of its own; call examples() and split by index")
        with self.path.open(encoding="utf-8") as lines:
            for line_number, line in enumerate(lines, start=1):
                if line.strip():
                    yield self._example(line, f"{self.path}:{line_number}")

    def _example(self, line: str, where: str) -> SFTExample:
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{where}: not valid JSON ({err.msg})") from err
        if not isinstance(record, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
        if "messages" in record and self.prompt_field not in record:
            return chat_example(record["messages"], where)
        for key, name in (("prompt_field", self.prompt_field), ("response_field", self.response_field)):
            if not isinstance(record.get(name), str):
                problem = "is missing" if name not in record else "is not a string"
                raise ValueError(
                    f"{where}: field {name!r} {problem} (fields found: {sorted(record)}); "
                    f"set data.source.{key}, or use a 'messages' chat record"
                )
        return SFTExample(record[self.prompt_field], record[self.response_field], origin=where)


def chat_example(messages: Any, where: str) -> SFTExample:
    """Prompt = the turns before the last assistant message, rendered; response = that message."""
    if not isinstance(messages, list) or not all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
        for m in messages
    ):
        raise ValueError(f"{where}: 'messages' must be a list of {{'role': str, 'content': str}} objects")
    assistant_turns = [i for i, message in enumerate(messages) if message["role"] == "assistant"]
    if not assistant_turns:
        raise ValueError(f"{where}: chat has no 'assistant' message to use as the response")
    last = assistant_turns[-1]
    turns = [CHAT_TURN_TEMPLATE.format(role=m["role"], content=m["content"]) for m in messages[:last]]
    prompt = "".join(turns) + "<|assistant|>\n"
    return SFTExample(prompt, messages[last]["content"], origin=where)


class StdlibFunctionSFTSource:
    """Complete a documented function: prompt = signature + docstring, response = the body.

    Built from the documents of a corpus of Python sources (default: ``PyStdlibCorpus()``),
    so its splits are that corpus's file-level splits. See ``python_functions``. Parsing the
    whole stdlib takes ~10 s, so the pairs of each split are cached as JSONL in ``cache_dir``
    (default: the token cache's folder), keyed by the corpus fingerprint.
    """

    has_splits = True
    EXTRACTION_VERSION = 1  # bump when python_functions changes what it extracts

    def __init__(self, corpus: Corpus | None = None, cache_dir: str | None = None) -> None:
        self.corpus = corpus if corpus is not None else PyStdlibCorpus()
        self.cache_dir = cache_dir

    def examples(self, split: str | None = None) -> Iterator[SFTExample]:
        for current in SPLITS if split is None else (split,):
            check_split(current)
            path = self._cache_path(current)
            if not path.is_file():
                self._extract(current, path)
            with path.open(encoding="utf-8") as lines:
                for line in lines:
                    prompt, response = json.loads(line)
                    yield SFTExample(prompt, response)

    def _extract(self, split: str, path: Path) -> None:
        with atomic_file(path) as file:
            for document in self.corpus.documents(split):
                for pair in docstring_function_pairs(document):
                    file.write((json.dumps(pair) + "\n").encode("utf-8"))

    def _cache_path(self, split: str) -> Path:
        key = hashlib.sha1(f"{self.EXTRACTION_VERSION}:{self.corpus.fingerprint()}".encode()).hexdigest()[:16]
        return Path(self.cache_dir or default_cache_dir()) / f"sft-functions-{split}-{key}.jsonl"


def split_examples(
    source: SFTSource, split: str, val_fraction: float, test_fraction: float
) -> list[SFTExample]:
    """The examples of ``split``: the source's own split, else a stable hash of the index."""
    check_split(split)
    if source.has_splits:
        return list(source.examples(split))
    check_fractions(val_fraction, test_fraction, "data")
    return [
        example
        for index, example in enumerate(source.examples())
        if split_of(str(index), val_fraction, test_fraction) == split
    ]


@dataclass(frozen=True)
class EncodedSFT:
    input_ids: np.ndarray  # (N, seq_len) int64
    prompt_mask: np.ndarray  # (N, seq_len) bool, True on BOS + prompt
    num_dropped: int  # too long for seq_len (and not truncatable)
    num_truncated: int  # response cut to fit; such rows end without EOS

    def __len__(self) -> int:
        return len(self.input_ids)


def refuse_mask_token(
    examples: Sequence[SFTExample],
    prompts: Sequence[np.ndarray],
    responses: Sequence[np.ndarray],
    tokenizer: Tokenizer,
) -> None:
    """Text that encodes to the mask id (an HF tokenizer matches its mask token's text, e.g.
    ``<|mdm_mask|>``, anywhere in the input) would train the model on a "masked" position that
    is not one; generation refuses such a prompt, so training must too. Raises ValueError naming
    the file and line (or the example's prompt, for sources without a file)."""
    mask_id = tokenizer.mask_id
    if not any(np.any(ids == mask_id) for ids in (*prompts, *responses)):
        return
    for example, prompt, response in zip(examples, prompts, responses, strict=True):
        for part, ids in (("prompt", prompt), ("response", response)):
            if np.any(ids == mask_id):
                where = example.origin or f"the example with prompt {example.prompt[:40]!r}"
                mask_text = tokenizer.decode([mask_id], skip_special=False)
                raise ValueError(
                    f"{where}: the {part} contains {mask_text!r}, which the tokenizer encodes as its mask "
                    f"token (id {mask_id}); the model could not tell it from a masked position. Remove "
                    f"or rewrite it in the data (e.g. insert a space inside it), or pick another "
                    f"tokenizer.mask_id"
                )


def encode_sft(
    examples: Iterable[SFTExample], tokenizer: Tokenizer, seq_len: int, truncate: bool = False
) -> EncodedSFT:
    """Rows ``[BOS] prompt response [EOS] EOS-padding`` of length ``seq_len``.

    An example that does not fit is dropped, unless ``truncate`` and its prompt fits with
    room for at least one response token: then the response is cut at ``seq_len`` and the
    row has no EOS at all (the model is not taught to stop where the text was cut).
    """
    if seq_len <= 1:
        raise ValueError(f"data.seq_len={seq_len}: must be at least 2 (BOS + EOS)")
    examples = list(examples)
    prompts = tokenizer.encode_batch([example.prompt for example in examples])
    responses = tokenizer.encode_batch([example.response for example in examples])
    refuse_mask_token(examples, prompts, responses, tokenizer)

    rows: list[tuple[np.ndarray, np.ndarray]] = []
    num_dropped = num_truncated = 0
    for prompt, response in zip(prompts, responses, strict=True):
        prompt_end = 1 + len(prompt)  # BOS + prompt
        if prompt_end + len(response) + 1 > seq_len:
            if not truncate or prompt_end >= seq_len:
                num_dropped += 1
                continue
            response = response[: seq_len - prompt_end]
            num_truncated += 1
        rows.append((prompt, response))

    input_ids = np.full((len(rows), seq_len), tokenizer.eos_id, dtype=np.int64)
    prompt_mask = np.zeros((len(rows), seq_len), dtype=bool)
    for row, (prompt, response) in enumerate(rows):
        prompt_end = 1 + len(prompt)
        input_ids[row, 0] = tokenizer.bos_id
        input_ids[row, 1:prompt_end] = prompt
        input_ids[row, prompt_end : prompt_end + len(response)] = response
        prompt_mask[row, :prompt_end] = True
    return EncodedSFT(input_ids, prompt_mask, num_dropped, num_truncated)


def fitting_seq_len(source: SFTSource, tokenizer: Tokenizer, multiple: int = 8) -> int:
    """The row length that fits every example of every split: BOS + prompt + response + EOS of
    the longest, rounded up to a multiple of ``multiple`` (``data.seq_len=auto``)."""
    examples = list(source.examples())
    if not examples:
        raise ValueError("data.seq_len=auto: the data source has no examples")
    prompts = tokenizer.encode_batch([e.prompt for e in examples])
    responses = tokenizer.encode_batch([e.response for e in examples])
    refuse_mask_token(examples, prompts, responses, tokenizer)
    longest = max(len(p) + len(r) for p, r in zip(prompts, responses, strict=True)) + 2
    return -(-longest // multiple) * multiple
