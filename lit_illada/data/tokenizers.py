"""Tokenizers behind one small interface: a byte-level one and any Hugging Face tokenizer.

Every tokenizer exposes the four special ids a masked diffusion model needs (PAD, BOS, EOS,
MASK) and a stable ``name`` that goes into cache keys, so a tokenized corpus is never reused
with a different vocabulary.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tokenizers

# Searched in this order when a special token is not given explicitly or declared by the
# tokenizer's own special_tokens_map.json / tokenizer_config.json.
EOS_CANDIDATES = ("<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>", "<|eos|>")
BOS_CANDIDATES = ("<|startoftext|>", "<|begin_of_text|>", "<s>", "<bos>", "<|bos|>")
PAD_CANDIDATES = ("<pad>", "<|pad|>", "[PAD]", "<|padding|>")
MASK_CANDIDATES = ("<|mdm_mask|>", "[MASK]", "<mask>", "<|mask|>")


class Tokenizer(ABC):
    """What the rest of lit_illada needs from a tokenizer.

    ``encode`` never adds special tokens: callers place BOS/EOS themselves.
    """

    name: str  # stable identity of vocabulary + special ids; part of cache keys
    vocab_size: int
    pad_id: int
    bos_id: int
    eos_id: int
    mask_id: int
    is_byte_level: bool

    @abstractmethod
    def encode(self, text: str) -> list[int]: ...

    @abstractmethod
    def decode(self, ids: Any, skip_special: bool = True) -> str:
        """Text of ``ids`` (a list, numpy array or 1-D tensor)."""

    def encode_array(self, text: str) -> np.ndarray:
        return np.asarray(self.encode(text), dtype=np.int64)

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Encode many texts; subclasses override this when they have a faster batch path."""
        return [self.encode_array(text) for text in texts]

    @property
    def special_ids(self) -> frozenset[int]:
        return frozenset((self.pad_id, self.bos_id, self.eos_id, self.mask_id))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, vocab_size={self.vocab_size})"


def as_id_array(ids: Any) -> np.ndarray:
    """A 1-D int64 array from a list, numpy array or (possibly CUDA) tensor."""
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    array = np.asarray(ids, dtype=np.int64)
    if array.ndim != 1:
        raise ValueError(f"decode expects one sequence (1-D ids), got shape {array.shape}")
    return array


class ByteTokenizer(Tokenizer):
    """UTF-8 bytes as ids 0..255, then PAD, BOS, EOS, MASK. Needs no files and no network."""

    name = "byte"
    vocab_size = 260
    pad_id = 256
    bos_id = 257
    eos_id = 258
    mask_id = 259
    is_byte_level = True

    _SPECIAL_TEXT = {256: "<pad>", 257: "<bos>", 258: "<eos>", 259: "<mask>"}

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def encode_array(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.uint32)

    def decode(self, ids: Any, skip_special: bool = True) -> str:
        array = as_id_array(ids)
        out_of_range = array[(array < 0) | (array >= self.vocab_size)]
        if out_of_range.size:
            raise ValueError(
                f"ByteTokenizer.decode: ids {out_of_range[:5].tolist()} are outside [0, {self.vocab_size})"
            )
        if skip_special:
            return _utf8(array[array < 256])
        # Decode each run of bytes between specials on its own, so a special token never
        # glues the halves of a split multi-byte character back together.
        pieces, start = [], 0
        for position in np.flatnonzero(array >= 256):
            pieces += [_utf8(array[start:position]), self._SPECIAL_TEXT[int(array[position])]]
            start = position + 1
        pieces.append(_utf8(array[start:]))
        return "".join(pieces)


def _utf8(byte_ids: np.ndarray) -> str:
    return byte_ids.astype(np.uint8).tobytes().decode("utf-8", errors="replace")


class HFTokenizer(Tokenizer):
    """A Hugging Face ``tokenizers`` tokenizer (``tokenizer.json``), local or from the hub.

    Special ids come from, in order: the explicit arguments, the tokens declared in
    ``special_tokens_map.json`` / ``tokenizer_config.json`` next to the file, then well-known
    token names (``EOS_CANDIDATES`` etc.). BOS and PAD fall back to EOS when the vocabulary
    has none (GPT-2 style; LLaDA pads with EOS anyway). EOS and MASK are required.
    """

    is_byte_level = False

    def __init__(
        self,
        path: str,
        mask_id: int | None = None,
        mask_token: str | None = None,
        bos_token: str | None = None,
        eos_token: str | None = None,
        pad_token: str | None = None,
    ) -> None:
        self.path = path
        self._backend, declared = _load_backend(path)
        vocab: dict[str, int] = self._backend.get_vocab(with_added_tokens=True)
        # max id + 1, not len(vocab): some vocabularies have holes.
        self.vocab_size = max(vocab.values()) + 1

        self.eos_id = _required_id(vocab, "eos_token", eos_token, declared, EOS_CANDIDATES)
        bos_id = _optional_id(vocab, "bos_token", bos_token, declared, BOS_CANDIDATES)
        pad_id = _optional_id(vocab, "pad_token", pad_token, declared, PAD_CANDIDATES)
        self.bos_id = self.eos_id if bos_id is None else bos_id
        self.pad_id = self.eos_id if pad_id is None else pad_id
        if mask_id is not None:
            if not 0 <= mask_id < self.vocab_size:
                raise ValueError(
                    f"tokenizer.mask_id={mask_id} is outside the vocabulary [0, {self.vocab_size})"
                )
            self.mask_id = mask_id
        else:
            self.mask_id = _required_id(vocab, "mask_token", mask_token, declared, MASK_CANDIDATES)

        identity = json.dumps(
            [self._backend.to_str(), self.pad_id, self.bos_id, self.eos_id, self.mask_id]
        ).encode("utf-8")
        self.name = f"hf-{_short_name(path)}-{hashlib.sha1(identity).hexdigest()[:10]}"

    def encode(self, text: str) -> list[int]:
        return self._backend.encode(text, add_special_tokens=False).ids

    def encode_array(self, text: str) -> np.ndarray:
        return np.asarray(self.encode(text), dtype=np.uint32)

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        # encode_batch_fast (tokenizers >= 0.21) skips the character offsets we never use: ~1.3x.
        encode = getattr(self._backend, "encode_batch_fast", self._backend.encode_batch)
        encodings = encode(list(texts), add_special_tokens=False)
        return [np.asarray(encoding.ids, dtype=np.uint32) for encoding in encodings]

    def decode(self, ids: Any, skip_special: bool = True) -> str:
        id_list = as_id_array(ids).tolist()
        if skip_special:
            # Our mask/pad ids need not be flagged "special" in tokenizer.json: drop them here.
            specials = self.special_ids
            id_list = [i for i in id_list if i not in specials]
        return self._backend.decode(id_list, skip_special_tokens=skip_special)


def _looks_local(path: str) -> bool:
    return path.startswith(("/", "./", "../", "~")) or path.endswith(".json")


def _load_backend(path: str) -> tuple[Any, dict[str, str]]:
    """The ``tokenizers.Tokenizer`` for ``path`` and the special tokens it declares."""
    local = Path(path).expanduser()
    if local.is_dir():
        file = local / "tokenizer.json"
        if not file.is_file():
            raise FileNotFoundError(
                f"tokenizer.path={path!r}: the folder has no tokenizer.json; "
                "point tokenizer.path at a tokenizer.json file or a folder that holds one"
            )
        return _read_tokenizer_file(path, file), _declared_special_tokens(local)
    if local.is_file():
        return _read_tokenizer_file(path, local), _declared_special_tokens(local.parent)
    if _looks_local(path):
        raise FileNotFoundError(f"tokenizer.path={path!r}: no such file or folder")
    return _load_from_hub(path)


def _read_tokenizer_file(path: str, file: Path) -> Any:
    """``tokenizers.Tokenizer.from_file``, whose errors name neither the file nor what it expected."""
    try:
        return tokenizers.Tokenizer.from_file(str(file))
    except Exception as err:  # the Rust side raises a bare Exception ("expected `,` or `}` at line 1 ...")
        raise ValueError(
            f"tokenizer.path={path!r}: {file} is not a Hugging Face tokenizer.json ({err}); point "
            "tokenizer.path at the tokenizer.json a tokenizer's save_pretrained writes, or at its folder"
        ) from None


def _load_from_hub(repo_id: str) -> tuple[Any, dict[str, str]]:
    try:
        try:
            import transformers  # noqa: PLC0415 - optional dependency (the hf extra)
        except ImportError:
            return tokenizers.Tokenizer.from_pretrained(repo_id), {}
        auto = transformers.AutoTokenizer.from_pretrained(repo_id)
        if not getattr(auto, "is_fast", False):
            raise ValueError(f"{repo_id} has no fast (tokenizer.json) tokenizer")
        declared = {k: v for k, v in auto.special_tokens_map.items() if isinstance(v, str)}
        return auto.backend_tokenizer, declared
    except Exception as err:  # hub errors vary by library version; add the fix and re-raise
        raise OSError(
            f"tokenizer.path={repo_id!r} is not a local file or folder, and loading it from the "
            f"Hugging Face Hub failed: {err}. If this machine is offline (no network), fetch the "
            "tokenizer once elsewhere and set tokenizer.path to its local tokenizer.json or folder."
        ) from err


def _declared_special_tokens(folder: Path) -> dict[str, str]:
    """Special tokens named in special_tokens_map.json, else tokenizer_config.json."""
    declared: dict[str, str] = {}
    for filename in ("tokenizer_config.json", "special_tokens_map.json"):  # later file wins
        file = folder / filename
        if not file.is_file():
            continue
        try:
            config = json.loads(file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"tokenizer.path: {file} is not valid JSON ({err}); fix or remove it") from None
        if not isinstance(config, dict):
            raise ValueError(f"tokenizer.path: {file} is not a JSON object; fix or remove it")
        for key in ("eos_token", "bos_token", "pad_token", "mask_token"):
            value = config.get(key)
            if isinstance(value, dict):  # {"content": "<|endoftext|>", "lstrip": false, ...}
                value = value.get("content")
            if isinstance(value, str):
                declared[key] = value
    return declared


def _optional_id(
    vocab: dict[str, int],
    key: str,
    explicit: str | None,
    declared: dict[str, str],
    candidates: tuple[str, ...],
) -> int | None:
    """Id of the explicit token (which must exist), else of the first declared/known one present."""
    if explicit is not None:
        if explicit not in vocab:
            raise ValueError(
                f"tokenizer.{key}={explicit!r} is not in the vocabulary; choose a token it contains"
            )
        return vocab[explicit]
    search = ([declared[key]] if key in declared else []) + list(candidates)
    return next((vocab[token] for token in search if token in vocab), None)


def _required_id(
    vocab: dict[str, int],
    key: str,
    explicit: str | None,
    declared: dict[str, str],
    candidates: tuple[str, ...],
) -> int:
    found = _optional_id(vocab, key, explicit, declared, candidates)
    if found is None:
        hint = "set tokenizer.mask_id to an existing id, or " if key == "mask_token" else ""
        kind = key.removesuffix("_token").upper()
        raise ValueError(
            f"the tokenizer has no {kind} token (looked for {list(candidates)}); "
            f"{hint}set tokenizer.{key} to a token in its vocabulary"
        )
    return found


def _short_name(path: str) -> str:
    trimmed = Path(path.rstrip("/"))
    base = trimmed.parent.name if trimmed.name == "tokenizer.json" else trimmed.name
    return base.removesuffix(".json") or "tokenizer"
