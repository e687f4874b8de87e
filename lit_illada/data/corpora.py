"""Text corpora: where pretraining documents come from.

A corpus yields plain-text documents per split ("train", "val", "test") and a fingerprint
that changes whenever the selection of content changes; the token cache is keyed on it.

- ``PyStdlibCorpus``: the running Python's standard library sources. Every machine has it,
  so the tiny CPU configs need no download.
- ``TextCorpus``: local .txt / .jsonl / .json / .parquet files.
- ``HFCorpus``: anything ``datasets.load_dataset`` can open: a hub dataset or a local folder.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import sys
import sysconfig
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from lit_illada.data.splits import SPLITS, check_fractions, check_split, split_of

log = logging.getLogger(__name__)


@runtime_checkable
class Corpus(Protocol):
    def documents(self, split: str) -> Iterator[str]:
        """Documents of ``split`` in a deterministic order."""
        ...

    def fingerprint(self) -> str:
        """Changes whenever the documents a split would yield change."""
        ...


def _digest(parts: Any) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:16]


def _files_signature(files: Iterable[Path]) -> list[tuple[str, int, int]]:
    """Path, size and mtime of each file: cheap, and changes when a file is edited."""
    signature = []
    for file in files:
        stat = file.stat()
        signature.append((str(file), stat.st_size, stat.st_mtime_ns))
    return signature


class PyStdlibCorpus:
    """The ``.py`` sources of the running Python's standard library (site-packages excluded).

    A file's split is a stable hash of its path relative to ``root``. Files that are not
    valid UTF-8 (a few deliberate test fixtures) and empty files are skipped.
    """

    _EXCLUDED_DIRS = frozenset({"site-packages", "dist-packages", "__pycache__"})
    _TEST_DIRS = frozenset({"test", "tests", "idle_test"})

    def __init__(
        self,
        val_fraction: float = 0.02,
        test_fraction: float = 0.02,
        include_tests: bool = True,
        root: str | None = None,
    ) -> None:
        check_fractions(val_fraction, test_fraction, "data.corpus")
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.include_tests = include_tests
        self.root = Path(root).expanduser().resolve() if root else Path(sysconfig.get_paths()["stdlib"])
        if not self.root.is_dir():
            raise ValueError(f"data.corpus.root={str(self.root)!r} is not a folder")
        self.files = self._list_files()
        if not self.files:
            raise ValueError(
                f"data.corpus.root={str(self.root)!r}: no .py files found "
                f"(include_tests={include_tests}); point root at a folder of Python sources"
            )

    def _list_files(self) -> list[str]:
        """Sorted paths (relative to root, '/'-separated) of the candidate source files."""
        excluded = self._EXCLUDED_DIRS if self.include_tests else self._EXCLUDED_DIRS | self._TEST_DIRS
        files = []
        for folder, subfolders, names in os.walk(self.root):
            subfolders[:] = [name for name in subfolders if name not in excluded]
            for name in names:
                if name.endswith(".py") and (self.include_tests or not name.startswith("test_")):
                    files.append(Path(folder, name).relative_to(self.root).as_posix())
        return sorted(files)

    def split_files(self, split: str) -> list[str]:
        check_split(split)
        return [f for f in self.files if split_of(f, self.val_fraction, self.test_fraction) == split]

    def documents(self, split: str) -> Iterator[str]:
        for relative_path in self.split_files(split):
            try:
                text = (self.root / relative_path).read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
            if text:
                yield text

    def fingerprint(self) -> str:
        total_bytes = sum((self.root / f).stat().st_size for f in self.files)
        return "pystdlib-" + _digest(
            [
                sys.version,
                str(self.root),
                self.val_fraction,
                self.test_fraction,
                self.include_tests,
                len(self.files),
                total_bytes,
            ]
        )

    def __repr__(self) -> str:
        return (
            f"PyStdlibCorpus(root={str(self.root)!r}, files={len(self.files)}, "
            f"val_fraction={self.val_fraction}, test_fraction={self.test_fraction})"
        )


class TextCorpus:
    """Local text files. ``paths`` are files or globs (``data/**/*.jsonl``).

    A .txt file is one document; .jsonl/.json/.parquet files hold one document per record in
    ``text_field``. Files are read in sorted order (streaming, so the corpus is never copied
    into the Hugging Face cache) and each document's split is a stable hash of its index.
    """

    BUILDERS = {".txt": "text", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}

    def __init__(
        self,
        paths: str | list[str],
        text_field: str = "text",
        val_fraction: float = 0.02,
        test_fraction: float = 0.02,
    ) -> None:
        check_fractions(val_fraction, test_fraction, "data.corpus")
        patterns = [paths] if isinstance(paths, str) else [str(p) for p in paths]
        self.files = _expand(patterns)
        if not self.files:
            raise ValueError(
                f"data.corpus.paths={patterns}: no files matched; check the paths "
                "(globs such as 'corpus/*.txt' or 'corpus/**/*.jsonl' are allowed, folders are not)"
            )
        unsupported = sorted({f.suffix or f.name for f in self.files if f.suffix not in self.BUILDERS})
        if unsupported:
            raise ValueError(
                f"data.corpus.paths: unsupported file type(s) {unsupported}; "
                f"use {sorted(self.BUILDERS)} or narrow the glob"
            )
        self.text_field = text_field
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction

    def _all_documents(self) -> Iterator[str | None]:
        """Every document in file order, the format groups one after the other."""
        import datasets  # noqa: PLC0415 - slow import (seconds); only file corpora need it

        groups: dict[str, list[str]] = {}
        for file in self.files:
            groups.setdefault(self.BUILDERS[file.suffix], []).append(str(file))
        for builder, files in groups.items():
            if builder == "text":  # a .txt file is one document
                yield from _text_files(files, every_file=len(groups) == 1)
                continue
            dataset = datasets.load_dataset(builder, data_files=files, split="train", streaming=True)
            yield from _text_column(
                dataset, self.text_field, source=f"data.corpus.paths ({builder} files {files[:3]}...)"
            )

    def documents(self, split: str) -> Iterator[str]:
        check_split(split)
        for index, text in enumerate(self._all_documents()):
            if text and split_of(str(index), self.val_fraction, self.test_fraction) == split:
                yield text

    def fingerprint(self) -> str:
        return "text-" + _digest(
            [_files_signature(self.files), self.text_field, self.val_fraction, self.test_fraction]
        )

    def __repr__(self) -> str:
        first = str(self.files[0])
        return f"TextCorpus(files={len(self.files)}, first={first!r}, text_field={self.text_field!r})"


def _expand(patterns: list[str]) -> list[Path]:
    matches = set()
    for pattern in patterns:
        matches.update(glob.glob(os.path.expanduser(pattern), recursive=True))
    return sorted(Path(m).resolve() for m in matches if os.path.isfile(m))


def _text_files(files: list[str], every_file: bool) -> Iterator[str | None]:
    """Each .txt file as one document. A file that is not UTF-8 text (binary, or another
    encoding such as Latin-1) is skipped with a warning, as PyStdlibCorpus skips its few; if
    ``every_file`` of the corpus is skipped, that is an error naming the fix."""
    skipped = []
    for file in files:
        try:
            # Text mode: universal newlines, as the datasets text builder read them before.
            with open(file, encoding="utf-8") as handle:
                text = handle.read()
        except UnicodeDecodeError as err:
            skipped.append((file, f"not UTF-8: {err.reason} at byte {err.start}"))
            continue
        if "\x00" in text:  # NUL never occurs in text; UTF-8-valid binary (zeros) does
            skipped.append((file, "binary (holds NUL bytes)"))
            continue
        yield text
    if skipped:
        shown = "; ".join(f"{path} ({why})" for path, why in skipped[:3])
        more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        if every_file and len(skipped) == len(files):
            raise ValueError(
                f"data.corpus.paths: none of the {len(files)} .txt files is UTF-8 text: {shown}{more}. "
                "Convert them to UTF-8 (e.g. iconv -f latin1 -t utf-8) or point data.corpus.paths at "
                "text files"
            )
        log.warning("data.corpus.paths: skipped %d of %d .txt files that are not UTF-8 text: %s%s",
                    len(skipped), len(files), shown, more)


def _text_column(dataset: Any, field: str, source: str) -> Iterator[str | None]:
    """The ``field`` column of a (possibly streaming) dataset, read in batches for speed."""
    columns = dataset.column_names
    if columns is None:  # streaming, features not inferred (older datasets): the first row's fields
        first = next(iter(dataset), None)
        columns = None if first is None else list(first)
    if columns is not None and field not in columns:
        raise ValueError(
            f"data.corpus.text_field={field!r}: {source} has no such field; fields found: {columns}"
        )
    for batch in dataset.select_columns([field]).iter(batch_size=1024):
        yield from batch[field]


DEFAULT_SPLIT_MAP = {"train": "train", "val": "validation", "test": "test"}


class HFCorpus:
    """A dataset opened with ``datasets.load_dataset(name, config)``.

    ``name`` is a hub id (needs network or a warm HF cache) or a local folder that
    ``load_dataset`` can read, e.g. ``train.parquet`` + ``validation.parquet`` or
    ``data/train-*.jsonl``. ``split_map`` maps our splits to the dataset's; a dataset
    with only a train split can be carved with slices, e.g.
    ``{"train": "train[:98%]", "val": "train[98%:99%]", "test": "train[99%:]"}``
    (slices need ``streaming=False``). ``max_documents`` caps the rows read per split.

    The fingerprint covers the arguments and, for a local folder, its files' sizes and
    mtimes. A hub dataset that changes upstream is not detected: clear the cache then.
    """

    def __init__(
        self,
        name: str,
        config: str | None = None,
        split_map: Mapping[str, str] | None = None,
        text_field: str = "text",
        streaming: bool = False,
        max_documents: int | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.split_map = dict(DEFAULT_SPLIT_MAP if split_map is None else split_map)
        unknown = sorted(set(self.split_map) - set(SPLITS))
        if unknown:
            raise ValueError(f"data.corpus.split_map has unknown keys {unknown}; allowed keys are {SPLITS}")
        if max_documents is not None and max_documents <= 0:
            raise ValueError(f"data.corpus.max_documents={max_documents}: must be positive or null (no cap)")
        self.text_field = text_field
        self.streaming = streaming
        self.max_documents = max_documents

    def _load(self, split: str) -> Any:
        import datasets  # noqa: PLC0415 - slow import (seconds); only hub corpora need it

        if split not in self.split_map:
            raise ValueError(
                f"data.corpus.split_map={self.split_map} has no entry for {split!r}; add one "
                f"(e.g. {split}: 'train[98%:]' to carve it from the train split)"
            )
        hf_split = self.split_map[split]
        try:
            return datasets.load_dataset(self.name, self.config, split=hf_split, streaming=self.streaming)
        except Exception as err:  # datasets raises many types; add the config keys and re-raise
            raise RuntimeError(
                f"data.corpus.name={self.name!r} (config={self.config!r}): loading split {hf_split!r} "
                f"failed: {err}. Check data.corpus.split_map; a hub dataset needs network (this "
                "machine may be offline), otherwise point data.corpus.name at a local copy."
            ) from err

    def documents(self, split: str) -> Iterator[str]:
        check_split(split)
        dataset = self._load(split)
        source = f"data.corpus.name={self.name!r} split {self.split_map[split]!r}"
        for count, text in enumerate(_text_column(dataset, self.text_field, source)):
            if self.max_documents is not None and count >= self.max_documents:
                return
            if text:
                yield text

    def fingerprint(self) -> str:
        local = Path(self.name).expanduser().resolve()
        files = sorted(p for p in local.rglob("*") if p.is_file()) if local.is_dir() else []
        return "hf-" + _digest(
            [
                self.name,
                self.config,
                self.split_map,
                self.text_field,
                self.max_documents,
                _files_signature(files),
            ]
        )

    def __repr__(self) -> str:
        return f"HFCorpus(name={self.name!r}, config={self.config!r}, split_map={self.split_map})"
