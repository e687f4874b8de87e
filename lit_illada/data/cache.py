"""On-disk cache of tokenized splits: one flat ``.npy`` token stream per (corpus, tokenizer, split).

Tokenizing happens once; later runs memory-map the file, so loading is instant and the
stream never has to fit in RAM. Files are written to a temporary name and renamed into
place, so a killed process leaves either no cache entry or a complete one.

Location: ``cache_dir`` if given, else ``$LIT_ILLADA_CACHE``, else ``~/.cache/lit_illada``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
from tqdm import tqdm

from lit_illada.data.corpora import Corpus
from lit_illada.data.packing import document_token_chunks, token_dtype
from lit_illada.data.tokenizers import Tokenizer

log = logging.getLogger(__name__)

CACHE_ENV_VAR = "LIT_ILLADA_CACHE"
CACHE_FORMAT_VERSION = 1  # bump when the stream layout changes, to orphan old entries


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV_VAR) or Path.home() / ".cache" / "lit_illada")


def cache_path(corpus: Corpus, tokenizer: Tokenizer, split: str, cache_dir: str | Path | None = None) -> Path:
    """Where the stream for this (corpus content, tokenizer, split) lives."""
    key_parts = [CACHE_FORMAT_VERSION, corpus.fingerprint(), tokenizer.name, split]
    key = hashlib.sha1(json.dumps(key_parts).encode("utf-8")).hexdigest()[:16]
    readable_tokenizer = re.sub(r"[^A-Za-z0-9._-]", "_", tokenizer.name)
    return Path(cache_dir or default_cache_dir()) / f"{split}-{readable_tokenizer}-{key}.npy"


def load_tokens(path: Path) -> np.ndarray:
    """The cached stream, memory-mapped read-only."""
    return np.load(path, mmap_mode="r")


def ensure_tokenized(
    corpus: Corpus, tokenizer: Tokenizer, split: str, cache_dir: str | Path | None = None
) -> Path:
    """Path of the cached stream for ``split``, tokenizing the corpus first if needed."""
    path = cache_path(corpus, tokenizer, split, cache_dir)
    if path.is_file():
        return path
    started = time.perf_counter()
    log.info("tokenizing %s split of %r with %s -> %s", split, corpus, tokenizer.name, path)
    documents = tqdm(
        _require_documents(corpus.documents(split), corpus, split),
        desc=f"tokenizing {split}",
        unit=" docs",
        delay=2.0,  # no bar at all for splits that take less
        disable=None,  # and none when stderr is not a terminal (CI logs, cluster jobs)
    )
    num_tokens = write_npy_atomic(
        path, document_token_chunks(documents, tokenizer), token_dtype(tokenizer.vocab_size)
    )
    log.info("%s split: %d tokens in %.1fs", split, num_tokens, time.perf_counter() - started)
    return path


def tokenized_split(
    corpus: Corpus, tokenizer: Tokenizer, split: str, cache_dir: str | Path | None = None
) -> np.ndarray:
    """The flat token stream of ``split`` (memory-mapped), from the cache or freshly built."""
    return load_tokens(ensure_tokenized(corpus, tokenizer, split, cache_dir))


def _require_documents(documents: Iterable[str], corpus: Corpus, split: str) -> Iterator[str]:
    """Pass documents through; fail at the end if there were none (nothing is cached then)."""
    count = 0
    for document in documents:
        count += 1
        yield document
    if count == 0:
        raise ValueError(
            f"{corpus!r} has no documents in split {split!r}; check its paths/name and fields, "
            "and raise data.corpus.val_fraction / test_fraction if the corpus is small"
        )


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A binary file for writing that appears at ``path`` only once the block completes.

    Readers see either the previous file or the complete new one, never a partial file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # Unique per writer, so concurrent ranks building the same entry never share a file.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(temporary, "xb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def write_npy_atomic(path: Path, chunks: Iterable[np.ndarray], dtype: np.dtype) -> int:
    """Stream ``chunks`` into a 1-D ``.npy`` at ``path`` (atomically); return its length."""
    with atomic_file(path) as file:
        _write_header(file, dtype, length=0)
        data_offset = file.tell()
        length = 0
        for chunk in chunks:
            file.write(np.ascontiguousarray(chunk, dtype=dtype).data)
            length += chunk.size
        # The length is known only now. numpy pads 1-D headers so the shape can grow in
        # place (the header size does not depend on the length); the check guards that.
        file.seek(0)
        _write_header(file, dtype, length)
        if file.tell() != data_offset:
            raise RuntimeError(f"npy header size changed while writing {path}")
    return length


def _write_header(file: BinaryIO, dtype: np.dtype, length: int) -> None:
    header = {
        "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
        "fortran_order": False,
        "shape": (length,),
    }
    np.lib.format.write_array_header_1_0(file, header)
