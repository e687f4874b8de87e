"""Documents to one flat token stream, and that stream to fixed-length training sequences.

The stream is ``doc_0 EOS doc_1 EOS ...``; sequences are consecutive, non-overlapping
windows of it, so a sequence may start mid-document and span a document boundary (the EOS
tells the model where). The ragged tail shorter than one sequence is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from lit_illada.data.tokenizers import Tokenizer

DOCUMENTS_PER_BATCH = 256  # enough to amortize per-call overhead and use batch tokenizers


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned dtype that holds every id: halves the cache for small vocabularies."""
    return np.dtype(np.uint16) if vocab_size <= 2**16 else np.dtype(np.uint32)


def _batched(items: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def document_token_chunks(documents: Iterable[str], tokenizer: Tokenizer) -> Iterator[np.ndarray]:
    """The flat stream in consecutive chunks: each document's ids followed by EOS."""
    dtype = token_dtype(tokenizer.vocab_size)
    eos = np.array([tokenizer.eos_id], dtype=dtype)
    for batch in _batched(documents, DOCUMENTS_PER_BATCH):
        pieces: list[np.ndarray] = []
        for ids in tokenizer.encode_batch(batch):
            pieces += [ids, eos]
        yield np.concatenate(pieces).astype(dtype, copy=False)


def tokenize_documents(documents: Iterable[str], tokenizer: Tokenizer) -> np.ndarray:
    """The whole flat stream in memory; for small inputs (the cache streams to disk instead)."""
    chunks = list(document_token_chunks(documents, tokenizer))
    return np.concatenate(chunks) if chunks else np.empty(0, dtype=token_dtype(tokenizer.vocab_size))


def pack_sequences(tokens: np.ndarray, seq_len: int) -> np.ndarray:
    """A ``(N, seq_len)`` view of the stream; no copy, so a memory-mapped stream stays on disk."""
    if seq_len <= 0:
        raise ValueError(f"data.seq_len={seq_len}: must be a positive integer")
    num_sequences = len(tokens) // seq_len
    return tokens[: num_sequences * seq_len].reshape(num_sequences, seq_len)
