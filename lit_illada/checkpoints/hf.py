"""Hugging Face LLaDA / iLLaDA checkpoints to and from lit_illada's own layout.

The HF layout (REFERENCE.md, "HF checkpoint layout") is LLaDA's: keys under
``model.transformer.``, bf16 safetensors shards named by ``model.safetensors.index.json``,
and an OLMo-style ``config.json``. lit_illada's layout is one ``model.safetensors`` holding
the ``Transformer``'s own parameter names plus a ``config.json`` holding ``ModelConfig``'s
fields, the mask id and where the weights came from. An export also ships the transformers
code for the weights (``hf_modeling``: ``AutoModelForMaskedLM.from_pretrained(dir,
trust_remote_code=True)`` loads it) and a model card (``hf_card``).

An 8B checkpoint is 16 GB in bf16, so nothing here holds a whole checkpoint, or even a whole
shard, in memory: tensors are read one at a time from memory-mapped shards (one shard mapped
at a time), and written one at a time into a safetensors file whose header is planned from
the shapes before any data is read. Converting without a dtype change allocates no tensor
memory at all (the bytes go from the page cache to the file); with a cast, about one tensor
(the 1 GB embedding of LLaDA-8B in bf16). Every check on names and shapes runs before the
first byte is written, so a bad checkpoint never leaves a half-written directory behind.
Safetensors only: no pickle is read or written.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import struct
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

import torch
from safetensors import safe_open
from torch import nn

from lit_illada.checkpoints import hf_modeling
from lit_illada.checkpoints.hf_card import model_card
from lit_illada.core.model import ModelConfig, Transformer

log = logging.getLogger(__name__)

HF_PREFIX = "model.transformer."
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
CARD_FILE = "README.md"
LIT_FORMAT = "lit_illada"  # config.json["format"] of a directory that import_hf wrote
HF_SOURCE_FORMAT = "llada-hf"
DEFAULT_SHARD_BYTES = 5 * 10**9  # the transformers default ("5GB")

# --- config.json ---------------------------------------------------------------------------

# Fields config_from_hf reads and never guesses: a wrong default here would build a model that
# loads without complaint and computes something else.
REQUIRED_HF_FIELDS = (
    "d_model",
    "n_heads",
    "n_layers",
    "mlp_hidden_size",
    "vocab_size",
    "max_sequence_length",
    "rope_theta",
    "rms_norm_eps",
    "weight_tying",
)

# LLaDA's modelling code (derived from OLMo) has switches for variants our Transformer does not
# implement. These are LLaDA-8B's values, i.e. the architecture in REFERENCE.md: an imported
# config may leave a switch out, but one set to anything else is refused. Exports write them
# so LLaDA's own code rebuilds the same architecture from the exported config.json.
ARCHITECTURE_SETTINGS = {
    "activation_type": "silu",
    "alibi": False,
    "attention_layer_norm": False,
    "bias_for_layer_norm": False,
    "block_type": "llama",
    "include_bias": False,
    "include_qkv_bias": False,
    "input_emb_norm": False,
    "layer_norm_type": "rms",
    "layer_norm_with_affine": True,
    "rope": True,
    "scale_logits": False,
}

# The ModelConfig fields an HF config determines; a lit_illada config.json must state them all.
ARCHITECTURE_FIELDS = (
    "vocab_size",
    "n_layers",
    "d_model",
    "n_heads",
    "n_kv_heads",
    "ffn_hidden",
    "max_seq_len",
    "rope_theta",
    "norm_eps",
    "tie_embeddings",
)


def config_from_hf(
    config_json: Mapping, mask_id: int | None = None, name: str = "llada_hf"
) -> tuple[ModelConfig, int]:
    """The ``ModelConfig`` and mask id that an HF LLaDA ``config.json`` describes.

    The embedding and LM head get ``embedding_size`` rows when it is given: LLaDA pads the
    vocabulary up to it, and the tensors have that many rows. An explicit ``mask_id`` wins over
    the config's ``mask_token_id`` (iLLaDA reuses LLaDA's code, and its config, with mask id 5).
    """
    missing = [field for field in REQUIRED_HF_FIELDS if config_json.get(field) is None]
    if missing:
        raise ValueError(
            f"HF config.json lacks {missing}; lit_illada reads LLaDA-style configs "
            "(REFERENCE.md, 'HF checkpoint layout'): add the fields, or check that this is a LLaDA model"
        )
    _check_architecture_settings(config_json)
    if not isinstance(config_json["weight_tying"], bool):
        raise ValueError(
            f"HF config.json: weight_tying={config_json['weight_tying']!r} must be true or false"
        )
    rows = _embedding_rows(config_json)
    try:
        cfg = ModelConfig(
            name=name,
            vocab_size=rows,
            n_layers=config_json["n_layers"],
            d_model=config_json["d_model"],
            n_heads=config_json["n_heads"],
            n_kv_heads=_kv_heads(config_json),
            ffn_hidden=config_json["mlp_hidden_size"],
            max_seq_len=config_json["max_sequence_length"],
            rope_theta=float(config_json["rope_theta"]),
            norm_eps=float(config_json["rms_norm_eps"]),
            tie_embeddings=config_json["weight_tying"],
        )
    except ValueError as err:
        raise ValueError(f"HF config.json describes a model lit_illada cannot build: {err}") from err
    return cfg, _resolve_mask_id(config_json.get("mask_token_id"), mask_id, rows)


def config_to_hf(cfg: ModelConfig, mask_id: int) -> dict:
    """The HF LLaDA ``config.json`` fields for ``cfg``, architecture switches included.

    ``vocab_size`` and ``embedding_size`` both get the number of embedding rows: the true
    vocabulary size is not part of ``ModelConfig`` (``export_hf`` restores it from the
    imported config when there is one).
    """
    _check_mask_id(mask_id, cfg.vocab_size, "mask_id")
    return {
        **ARCHITECTURE_SETTINGS,
        "d_model": cfg.d_model,
        "n_heads": cfg.n_heads,
        "n_kv_heads": cfg.n_kv_heads,
        "n_layers": cfg.n_layers,
        "mlp_hidden_size": cfg.ffn_hidden,
        "vocab_size": cfg.vocab_size,
        "embedding_size": cfg.vocab_size,
        "max_sequence_length": cfg.max_seq_len,
        "rope_theta": cfg.rope_theta,
        "rms_norm_eps": cfg.norm_eps,
        "weight_tying": cfg.tie_embeddings,
        "mask_token_id": mask_id,
    }


def _check_architecture_settings(config_json: Mapping) -> None:
    wrong = {
        key: config_json[key]
        for key, supported in ARCHITECTURE_SETTINGS.items()
        if key in config_json and config_json[key] != supported
    }
    if config_json.get("clip_qkv") is not None:
        wrong["clip_qkv"] = config_json["clip_qkv"]
    if wrong:
        expected = {key: ARCHITECTURE_SETTINGS.get(key) for key in wrong}
        raise ValueError(
            f"HF config.json sets {wrong}, which the lit_illada Transformer does not implement "
            f"(it is LLaDA's architecture: {expected}); this checkpoint cannot be converted exactly"
        )


def _embedding_rows(config_json: Mapping) -> int:
    vocab, padded = config_json["vocab_size"], config_json.get("embedding_size")
    if padded is None:
        return vocab
    if padded < vocab:
        raise ValueError(
            f"HF config.json: embedding_size={padded} is smaller than vocab_size={vocab}; "
            "embedding_size is the padded row count and must be >= vocab_size"
        )
    return padded


def _kv_heads(config_json: Mapping) -> int:
    """OLMo semantics: n_kv_heads null means MHA, or one KV head with multi_query_attention."""
    if config_json.get("n_kv_heads") is not None:
        return config_json["n_kv_heads"]
    return 1 if config_json.get("multi_query_attention") else config_json["n_heads"]


def _resolve_mask_id(declared: int | None, explicit: int | None, rows: int) -> int:
    if explicit is None and declared is None:
        raise ValueError(
            "no mask id: config.json has no mask_token_id and none was given; "
            "pass mask_id (126336 for LLaDA, 5 for iLLaDA)"
        )
    if explicit is not None and declared is not None and explicit != declared:
        log.warning("mask_id=%d given; it overrides config.json's mask_token_id=%d", explicit, declared)
    chosen = explicit if explicit is not None else declared
    _check_mask_id(chosen, rows, "mask_id" if explicit is not None else "config.json mask_token_id")
    return chosen


def _check_mask_id(mask_id: object, rows: int, what: str) -> None:
    if not isinstance(mask_id, int) or isinstance(mask_id, bool) or not 0 <= mask_id < rows:
        raise ValueError(f"{what}={mask_id!r} must be a token id in [0, {rows}) (the embedding rows)")


# --- parameter names -------------------------------------------------------------------------

# lit_illada name -> HF name (both without their prefix). Written out rather than derived by
# string surgery so that the two layouts can be read side by side.
TOP_LEVEL_KEYS = {"wte.weight": "wte.weight", "ln_f.weight": "ln_f.weight", "lm_head.weight": "ff_out.weight"}
BLOCK_KEYS = {  # under blocks.{i}. on both sides
    "attn_norm.weight": "attn_norm.weight",
    "attn.q_proj.weight": "q_proj.weight",
    "attn.k_proj.weight": "k_proj.weight",
    "attn.v_proj.weight": "v_proj.weight",
    "attn.attn_out.weight": "attn_out.weight",
    "ff_norm.weight": "ff_norm.weight",
    "mlp.ff_proj.weight": "ff_proj.weight",  # gate, SiLU applied
    "mlp.up_proj.weight": "up_proj.weight",
    "mlp.ff_out.weight": "ff_out.weight",  # down projection
}


def hf_key_map(cfg: ModelConfig) -> dict[str, str]:
    """lit_illada parameter name -> HF key, in HF order (embedding, blocks, final norm, head).

    A tied model has no ``lm_head.weight`` entry: the head is ``wte.weight`` on both sides.
    """
    keys = {"wte.weight": HF_PREFIX + TOP_LEVEL_KEYS["wte.weight"]}
    for i in range(cfg.n_layers):
        for ours, theirs in BLOCK_KEYS.items():
            keys[f"blocks.{i}.{ours}"] = f"{HF_PREFIX}blocks.{i}.{theirs}"
    keys["ln_f.weight"] = HF_PREFIX + TOP_LEVEL_KEYS["ln_f.weight"]
    if not cfg.tie_embeddings:
        keys["lm_head.weight"] = HF_PREFIX + TOP_LEVEL_KEYS["lm_head.weight"]
    return keys


def parameter_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Our parameter name -> shape, read off a meta-device model (nothing is allocated).

    ``named_parameters`` lists a tied head once, as ``wte.weight``, exactly like the key map;
    the check below fails loudly if model.py and the key map ever drift apart.
    """
    with torch.device("meta"):
        shapes = {name: tuple(p.shape) for name, p in Transformer(cfg).named_parameters()}
    mapped = set(hf_key_map(cfg))
    if set(shapes) != mapped:
        only_model, only_map = sorted(set(shapes) - mapped)[:5], sorted(mapped - set(shapes))[:5]
        raise RuntimeError(
            "lit_illada.core.model parameter names no longer match hf_interop's key map: "
            f"only in the model {only_model}, only in the map {only_map}; "
            "update TOP_LEVEL_KEYS / BLOCK_KEYS in lit_illada/hf_interop.py"
        )
    return shapes


# --- reading tensors one at a time ---------------------------------------------------------------

SAFETENSORS_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
SAFETENSORS_CODES = {dtype: code for code, dtype in SAFETENSORS_DTYPES.items()}
DTYPE_NAMES = {
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
    "half": torch.float16,
    "fp32": torch.float32,
    "float32": torch.float32,
    "float": torch.float32,
}


class TensorSpec(NamedTuple):
    shape: tuple[int, ...]
    dtype: torch.dtype

    @property
    def nbytes(self) -> int:
        return torch.Size(self.shape).numel() * self.dtype.itemsize

    def cast(self, dtype: torch.dtype | None) -> TensorSpec:
        return self if dtype is None else TensorSpec(self.shape, dtype)


class SafetensorsReader:
    """Tensors spread over safetensors files, read one tensor at a time.

    Headers (names, shapes, dtypes) of every file are read up front, which is cheap. Data is
    memory-mapped from one file at a time: asking for a tensor of another file closes the
    current one, so reading in ``keys()`` order walks the shards one by one.
    """

    def __init__(self, files: Iterable[Path]) -> None:
        """Read the headers of ``files``; a tensor name may appear in only one of them."""
        self._file_of: dict[str, Path] = {}
        self._specs: dict[str, TensorSpec] = {}
        for file in files:
            self._read_header(Path(file))
        self._open: tuple[Path, object] | None = None

    @classmethod
    def from_hf_dir(cls, folder: Path) -> SafetensorsReader:
        """The shards named by ``model.safetensors.index.json``, else one ``model.safetensors``."""
        index = folder / INDEX_FILE
        if index.is_file():
            weight_map = _read_json(index).get("weight_map")
            if not isinstance(weight_map, dict) or not weight_map:
                raise ValueError(f"{index}: no 'weight_map' naming the shard of each tensor")
            files = sorted({folder / name for name in weight_map.values()})
            absent = [file.name for file in files if not file.is_file()]
            if absent:
                raise FileNotFoundError(f"{index} names shards that are not in {folder}: {absent}")
            return cls(files)
        if (folder / WEIGHTS_FILE).is_file():
            return cls([folder / WEIGHTS_FILE])
        raise FileNotFoundError(
            f"{folder}: neither {INDEX_FILE} nor {WEIGHTS_FILE}; no safetensors weights here"
        )

    def _read_header(self, file: Path) -> None:
        if not file.is_file():
            raise FileNotFoundError(f"{file}: no such file")
        try:
            handle = safe_open(str(file), framework="pt")
        except Exception as err:  # safetensors raises its own SafetensorError for a bad header
            raise ValueError(f"{file}: not a readable safetensors file ({err})") from err
        with handle:
            for key in handle.keys():
                if key in self._file_of:
                    raise ValueError(f"tensor {key!r} is in both {self._file_of[key].name} and {file.name}")
                sliced = handle.get_slice(key)
                code = sliced.get_dtype()
                if code not in SAFETENSORS_DTYPES:
                    raise ValueError(
                        f"{file}: tensor {key!r} has dtype {code}, which lit_illada does not read"
                    )
                self._file_of[key] = file
                self._specs[key] = TensorSpec(tuple(sliced.get_shape()), SAFETENSORS_DTYPES[code])

    def keys(self) -> list[str]:
        """Every tensor name, grouped by file in file order."""
        return list(self._file_of)

    def spec(self, key: str) -> TensorSpec:
        return self._specs[key]

    def get(self, key: str) -> torch.Tensor:
        """The tensor; safetensors 0.8 maps it copy-on-write, so writing to it never touches the file."""
        file = self._file_of[key]
        if self._open is None or self._open[0] != file:
            self.close()
            handle = safe_open(str(file), framework="pt")
            handle.__enter__()
            self._open = (file, handle)
        return self._open[1].get_tensor(key)

    def close(self) -> None:
        if self._open is not None:
            self._open[1].__exit__(None, None, None)
            self._open = None

    def __enter__(self) -> SafetensorsReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class StateDictReader:
    """The ``SafetensorsReader`` interface over tensors already in memory."""

    def __init__(self, tensors: Mapping[str, torch.Tensor]) -> None:
        self._tensors = dict(tensors)

    def keys(self) -> list[str]:
        return list(self._tensors)

    def spec(self, key: str) -> TensorSpec:
        tensor = self._tensors[key]
        return TensorSpec(tuple(tensor.shape), tensor.dtype)

    def get(self, key: str) -> torch.Tensor:
        return self._tensors[key].detach()

    def __enter__(self) -> StateDictReader:
        return self

    def __exit__(self, *exc) -> None:
        pass


TensorReader = SafetensorsReader | StateDictReader


def check_tensors(
    reader: TensorReader, expected: Mapping[str, tuple[int, ...]], where: str, hints: Iterable[str] = ()
) -> None:
    """Raise one error listing every missing, unexpected and wrongly shaped tensor."""
    present = set(reader.keys())
    missing = [key for key in expected if key not in present]
    unexpected = sorted(present - set(expected))
    wrong = [
        f"{key}: {list(reader.spec(key).shape)}, the config gives {list(shape)}"
        for key, shape in expected.items()
        if key in present and reader.spec(key).shape != shape
    ]
    if not (missing or unexpected or wrong):
        return
    problems = [
        _listing(f"missing ({len(missing)})", missing),
        _listing(f"unexpected ({len(unexpected)})", unexpected),
        _listing(f"wrong shape ({len(wrong)})", wrong),
    ]
    if wrong:
        hints = [
            *hints,
            "shapes follow from d_model, n_heads, n_kv_heads, the FFN size and the vocabulary rows",
        ]
    text = "\n".join(line for line in problems if line)
    text += "".join(f"\nhint: {hint}" for hint in hints)
    raise ValueError(f"{where}: the tensors do not match the config\n{text}")


def _listing(label: str, items: list[str], limit: int = 8) -> str:
    if not items:
        return ""
    more = f", ... and {len(items) - limit} more" if len(items) > limit else ""
    return f"  {label}: {', '.join(items[:limit])}{more}"


def _hf_layout_hints(reader: TensorReader, cfg: ModelConfig) -> list[str]:
    """Likely causes of an HF key mismatch, in config.json terms."""
    keys, head = set(reader.keys()), HF_PREFIX + TOP_LEVEL_KEYS["lm_head.weight"]
    hints = []
    if cfg.tie_embeddings and head in keys:
        hints.append(f"{head} is an untied LM head but config.json says weight_tying=true; set it to false")
    if not cfg.tie_embeddings and head not in keys:
        hints.append(f"there is no LM head ({head}) but config.json says weight_tying=false; set it to true")
    if keys and not any(key.startswith(HF_PREFIX) for key in keys):
        hints.append(f"no key starts with {HF_PREFIX!r}: this is not a LLaDA-layout checkpoint")
    if any(key.endswith(".bias") for key in keys):
        hints.append(
            "the lit_illada Transformer has no biases; a checkpoint with bias tensors cannot be converted"
        )
    return hints


# --- writing tensors one at a time -----------------------------------------------------------------


def write_safetensors(
    path: Path, entries: list[tuple[str, TensorSpec]], fetch: Callable[[str], torch.Tensor]
) -> None:
    """Write a safetensors file tensor by tensor: ``fetch(name)`` is called once per entry.

    ``safetensors.torch.save_file`` needs every tensor in memory at once; this writer plans
    the header from ``entries`` and then streams the data, so only one tensor is alive at a
    time. The file is written under a temporary name and renamed when complete.
    """
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}  # transformers requires "format"
    offset = 0
    for name, spec in entries:
        header[name] = {
            "dtype": SAFETENSORS_CODES[spec.dtype],
            "shape": list(spec.shape),
            "data_offsets": [offset, offset + spec.nbytes],
        }
        offset += spec.nbytes
    blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
    blob += b" " * (-len(blob) % 8)  # the data must start 8-byte aligned
    partial = path.with_name(path.name + ".partial")
    try:
        with open(partial, "wb") as out:
            out.write(struct.pack("<Q", len(blob)))
            out.write(blob)
            for name, spec in entries:
                tensor = fetch(name)
                if (tuple(tensor.shape), tensor.dtype) != spec:
                    raise RuntimeError(f"{name}: got {tuple(tensor.shape)} {tensor.dtype}, planned {spec}")
                out.write(_raw_bytes(tensor))
                del tensor
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _raw_bytes(tensor: torch.Tensor) -> memoryview:
    """The tensor's little-endian bytes without another copy (bf16 has no numpy dtype: view as bytes)."""
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    return memoryview(flat.view(torch.uint8).numpy())


def _cast(tensor: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    return tensor if dtype is None or tensor.dtype == dtype else tensor.to(dtype)


def resolve_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    """A floating torch dtype from a dtype or a name such as "bf16"; None keeps the stored dtype."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPE_NAMES:
        raise ValueError(f"dtype={dtype!r} is unknown; choose one of {sorted(DTYPE_NAMES)}")
    return DTYPE_NAMES[dtype]


# --- lit_illada's own directory layout ----------------------------------------------------------


@dataclasses.dataclass
class LitModelDir:
    """What a lit_illada model directory's config.json says."""

    config: ModelConfig
    mask_id: int
    source: dict


def is_lit_dir(path: Path) -> bool:
    return (path / CONFIG_FILE).is_file() and _read_json(path / CONFIG_FILE).get("format") == LIT_FORMAT


def is_hf_dir(path: Path) -> bool:
    has_weights = (path / INDEX_FILE).is_file() or (path / WEIGHTS_FILE).is_file()
    return has_weights and (path / CONFIG_FILE).is_file() and not is_lit_dir(path)


def read_lit_dir(folder: Path) -> LitModelDir:
    file = Path(folder) / CONFIG_FILE
    data = _read_json(file)
    if data.get("format") != LIT_FORMAT:
        raise ValueError(
            f'{file}: not a lit_illada model directory (no "format": "{LIT_FORMAT}"); '
            "a Hugging Face LLaDA directory is read by import_hf or lit_illada.load"
        )
    fields = {field.name for field in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(data) - fields - {"format", "mask_id", "source"})
    missing = [key for key in (*ARCHITECTURE_FIELDS, "mask_id") if key not in data]
    if unknown or missing:
        raise ValueError(
            f"{file}: unknown fields {unknown}, missing fields {missing}; rewrite it with import_hf"
        )
    config = ModelConfig(**{key: value for key, value in data.items() if key in fields})
    _check_mask_id(data["mask_id"], config.vocab_size, f"{file} mask_id")
    return LitModelDir(config, data["mask_id"], data.get("source") or {})


def _write_lit_config(folder: Path, cfg: ModelConfig, mask_id: int, source: dict) -> None:
    data = {"format": LIT_FORMAT, **cfg.to_dict(), "mask_id": mask_id, "source": source}
    _write_json(folder / CONFIG_FILE, data)


def _prepare_output(out_dir: Path, overwrite: bool, source: Path | None, also: tuple[str, ...] = ()) -> None:
    """Create ``out_dir``; refuse to mix with a model (or the ``also`` files) there unless ``overwrite``.

    With ``overwrite`` the old config.json goes first, so an interrupted conversion leaves a
    directory that no loader mistakes for a complete model. Writing into the source
    directory is always refused: overwrite would delete the weights being read.
    """
    if source is not None and out_dir.resolve() == source.resolve():
        raise ValueError(f"out_dir={out_dir} is the directory being converted; choose another out_dir")
    out_dir.mkdir(parents=True, exist_ok=True)
    patterns = (CONFIG_FILE, INDEX_FILE, "model*.safetensors", *also)
    existing = sorted({file for pattern in patterns for file in out_dir.glob(pattern)})
    if existing and not overwrite:
        names = ", ".join(file.name for file in existing[:4])
        raise FileExistsError(
            f"{out_dir} already holds a model ({names}); choose another directory or pass overwrite=True"
        )
    for file in sorted(existing, key=lambda file: file.name != CONFIG_FILE):
        file.unlink()


def _copy_tokenizer_files(src: Path, dst: Path) -> None:
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


def _write_json(path: Path, data: dict) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)


# --- import ------------------------------------------------------------------------------------


def import_hf(
    hf_dir: str | Path,
    out_dir: str | Path,
    mask_id: int | None = None,
    dtype: torch.dtype | str | None = None,
    overwrite: bool = False,
) -> Path:
    """Convert an HF LLaDA directory into a lit_illada model directory; returns ``out_dir``.

    Writes ``model.safetensors`` (our parameter names, ``dtype`` or the stored dtype),
    ``config.json`` (``ModelConfig`` fields, ``mask_id``, and ``source`` with the original
    config so ``export_hf`` can restore it) and copies the tokenizer files that exist.
    """
    hf_dir, out_dir = Path(hf_dir), Path(out_dir)
    hf_config = _read_json(hf_dir / CONFIG_FILE)
    cfg, mask_id = config_from_hf(hf_config, mask_id, name=hf_dir.resolve().name)
    dtype = resolve_dtype(dtype)
    theirs_of = hf_key_map(cfg)
    ours_of = {theirs: ours for ours, theirs in theirs_of.items()}
    with SafetensorsReader.from_hf_dir(hf_dir) as reader:
        _check_hf_tensors(reader, cfg, hf_dir)
        _prepare_output(out_dir, overwrite, source=hf_dir)
        entries = [(ours_of[key], reader.spec(key).cast(dtype)) for key in reader.keys()]  # shard by shard
        write_safetensors(
            out_dir / WEIGHTS_FILE, entries, lambda ours: _cast(reader.get(theirs_of[ours]), dtype)
        )
    _copy_tokenizer_files(hf_dir, out_dir)
    source = {"format": HF_SOURCE_FORMAT, "path": str(hf_dir.resolve()), "hf_config": hf_config}
    _write_lit_config(out_dir, cfg, mask_id, source)  # last: its presence marks a complete directory
    return out_dir


def _check_hf_tensors(reader: SafetensorsReader, cfg: ModelConfig, hf_dir: Path) -> None:
    key_map = hf_key_map(cfg)
    expected = {key_map[ours]: shape for ours, shape in parameter_shapes(cfg).items()}
    check_tensors(reader, expected, where=str(hf_dir), hints=_hf_layout_hints(reader, cfg))


# --- loading into a model ------------------------------------------------------------------------


def load_hf_model(
    hf_dir: str | Path,
    mask_id: int | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str | None = None,
) -> tuple[Transformer, int, dict]:
    """An HF LLaDA directory as a ``Transformer``, without writing anything; returns (model, mask id, config).

    Tensors are read, cast and moved to ``device`` one at a time, so host memory never holds
    more than the model plus one tensor (just one tensor when ``device`` is a GPU). On the CPU
    in the stored dtype the parameters stay copy-on-write maps of the shards: loading takes
    no time and memory fills as the weights are first used.
    """
    hf_dir = Path(hf_dir)
    hf_config = _read_json(hf_dir / CONFIG_FILE)
    cfg, mask_id = config_from_hf(hf_config, mask_id, name=hf_dir.resolve().name)
    ours_of = {theirs: ours for ours, theirs in hf_key_map(cfg).items()}
    with SafetensorsReader.from_hf_dir(hf_dir) as reader:
        _check_hf_tensors(reader, cfg, hf_dir)
        model = _materialize(cfg, reader, ours_of, device, resolve_dtype(dtype))
    return model, mask_id, hf_config


def load_lit_model(
    folder: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype | str | None = None
) -> tuple[Transformer, LitModelDir]:
    """A directory written by ``import_hf`` as a ``Transformer``, streamed like ``load_hf_model``."""
    folder = Path(folder)
    meta = read_lit_dir(folder)
    with SafetensorsReader([folder / WEIGHTS_FILE]) as reader:
        check_tensors(reader, parameter_shapes(meta.config), where=str(folder / WEIGHTS_FILE))
        model = _materialize(
            meta.config, reader, {key: key for key in reader.keys()}, device, resolve_dtype(dtype)
        )
    return model, meta


def _materialize(
    cfg: ModelConfig,
    reader: TensorReader,
    ours_of: Mapping[str, str],
    device: str | torch.device,
    dtype: torch.dtype | None,
) -> Transformer:
    """Build on the meta device, then assign each tensor as it is read (no random init, no copy)."""
    with torch.device("meta"):
        model = Transformer(cfg)
    state = {ours_of[key]: _cast(reader.get(key), dtype).to(device) for key in reader.keys()}
    result = model.load_state_dict(state, strict=False, assign=True)
    allowed_missing = {"lm_head.weight"} if cfg.tie_embeddings else set()
    if set(result.missing_keys) != allowed_missing or result.unexpected_keys:
        raise RuntimeError(f"internal: state dict mismatch after validation: {result}")
    if cfg.tie_embeddings:
        model.lm_head.weight = model.wte.weight  # assign=True replaced wte's parameter: tie again
    return model.eval()


# --- export ------------------------------------------------------------------------------------


@dataclasses.dataclass
class _ExportSource:
    config: ModelConfig
    mask_id: int | None
    reader: TensorReader
    hf_config: dict | None  # the config.json it was imported from, if any
    folder: Path | None  # where tokenizer files may be
    where: str  # names the source in error messages
    description: str = ""  # what the model card says was exported; default: where


# Written by export_hf besides the weights and config.json: the transformers code and the card.
EXPORT_FILES = (*hf_modeling.SOURCE_FILES, CARD_FILE)


def export_hf(
    source: str | Path | nn.Module | Mapping[str, torch.Tensor],
    out_dir: str | Path,
    *,
    config: ModelConfig | None = None,
    mask_id: int | None = None,
    shard_size_bytes: int = DEFAULT_SHARD_BYTES,
    dtype: torch.dtype | str | None = None,
    overwrite: bool = False,
    run_config: Mapping | None = None,
    exported_from: str | None = None,
    model_id: str | None = None,
) -> Path:
    """Write the HF LLaDA layout plus what transformers loads it with; returns ``out_dir``.

    ``source`` is a lit_illada model directory, a ``Transformer`` (e.g. from
    ``lit_illada.load``, which also gives the mask id), or a state dict with ``config`` and
    ``mask_id``. The folder holds safetensors shards (one shard is written as
    ``model.safetensors`` without an index, as ``transformers`` does), ``config.json``,
    ``configuration_lit_illada.py`` / ``modeling_lit_illada.py`` (so
    ``AutoModelForMaskedLM.from_pretrained(out_dir, trust_remote_code=True)`` loads it) and a
    model card ``README.md`` that lists ``run_config`` (the training config, when known), says
    what the weights were ``exported_from`` and loads them as ``model_id`` (default: the
    folder's name; the Hub repo id when pushing).

    Importing the result gives back identical tensors; exporting an imported directory gives
    back the original tensors and config.json, except the transformers entries
    (``model_type``, ``architectures``, ``auto_map``, ``torch_dtype``), which describe the
    code shipped here.
    """
    if shard_size_bytes <= 0:
        raise ValueError(f"shard_size_bytes={shard_size_bytes} must be positive")
    out_dir, dtype = Path(out_dir), resolve_dtype(dtype)
    origin = _export_source(source, config)
    mask_id = mask_id if mask_id is not None else origin.mask_id
    if mask_id is None:
        raise ValueError(f"{origin.where}: no mask id to write into config.json; pass mask_id=...")
    theirs_of = hf_key_map(origin.config)
    ours_of = {theirs: ours for ours, theirs in theirs_of.items()}
    with origin.reader as reader:
        check_tensors(reader, parameter_shapes(origin.config), where=origin.where)
        _prepare_output(out_dir, overwrite, source=origin.folder, also=EXPORT_FILES)
        entries = [(theirs_of[ours], reader.spec(ours).cast(dtype)) for ours in theirs_of]
        _write_shards(
            out_dir, entries, shard_size_bytes, lambda theirs: _cast(reader.get(ours_of[theirs]), dtype)
        )
    if origin.folder is not None:
        _copy_tokenizer_files(origin.folder, out_dir)
    stored_dtype = str(entries[0][1].dtype).removeprefix("torch.")  # the embedding's
    hf_modeling.copy_sources(out_dir)
    card = model_card(
        model_id or out_dir.resolve().name,
        origin.config,
        mask_id,
        n_params=sum(torch.Size(spec.shape).numel() for _, spec in entries),
        dtype=stored_dtype,
        run_config=run_config,
        origin=exported_from or origin.description or origin.where,
    )
    (out_dir / CARD_FILE).write_text(card, encoding="utf-8")
    hf_config = {
        **_hf_config_for(origin.config, mask_id, origin.hf_config),
        **hf_modeling.TRANSFORMERS_FIELDS,  # the code shipped here, not the code it was imported with
        "torch_dtype": stored_dtype,
    }
    _write_json(out_dir / CONFIG_FILE, hf_config)  # last: its presence marks a complete folder
    return out_dir


def _export_source(source: object, config: ModelConfig | None) -> _ExportSource:
    if isinstance(source, (str, Path)):
        folder = Path(source)
        if not is_lit_dir(folder):
            raise ValueError(
                f'{folder}: not a lit_illada model directory (config.json with "format": "{LIT_FORMAT}"); '
                "for a training checkpoint use export_hf(lit_illada.load(ckpt).net, out_dir)"
            )
        meta = read_lit_dir(folder)
        reader = SafetensorsReader([folder / WEIGHTS_FILE])
        imported = meta.source.get("format") == HF_SOURCE_FORMAT
        hf_config = meta.source.get("hf_config") if imported else None
        description = f"`{folder}`" + (
            f", imported from the Hugging Face checkpoint `{meta.source.get('path')}`" if imported else ""
        )
        return _ExportSource(meta.config, meta.mask_id, reader, hf_config, folder, str(folder), description)
    if isinstance(source, nn.Module):
        if not isinstance(getattr(source, "config", None), ModelConfig):
            raise TypeError(
                f"export_hf: a {type(source).__name__} is not a lit_illada Transformer (no ModelConfig)"
            )
        reader = StateDictReader(dict(source.named_parameters()))  # a tied head is listed once, as wte
        return _ExportSource(
            source.config, getattr(source, "mask_id", None), reader, None, None, "the model",
            "a `Transformer` passed to `export_hf`",
        )
    if isinstance(source, Mapping):
        if config is None:
            raise ValueError("export_hf: a state dict needs config=ModelConfig(...) to name its shapes")
        return _ExportSource(
            config, None, StateDictReader(_untie(source, config)), None, None, "the state dict",
            "a state dict passed to `export_hf`",
        )
    raise TypeError(
        f"export_hf: cannot export a {type(source).__name__}; pass a directory, Transformer or state dict"
    )


def _untie(state: Mapping[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """``Transformer.state_dict()`` lists a tied head twice; keep it once, as ``wte.weight``."""
    state = dict(state)
    head = state.get("lm_head.weight")
    if cfg.tie_embeddings and head is not None and "wte.weight" in state:
        if not torch.equal(head, state["wte.weight"]):
            raise ValueError("config.tie_embeddings is true but lm_head.weight differs from wte.weight")
        del state["lm_head.weight"]
    return state


def _write_shards(
    out_dir: Path, entries: list[tuple[str, TensorSpec]], limit: int, fetch: Callable[[str], torch.Tensor]
) -> None:
    shards = _plan_shards(entries, limit)
    if len(shards) == 1:
        write_safetensors(out_dir / WEIGHTS_FILE, shards[0], fetch)
        return
    weight_map = {}
    for number, shard in enumerate(shards, start=1):
        name = f"model-{number:05d}-of-{len(shards):05d}.safetensors"
        write_safetensors(out_dir / name, shard, fetch)
        weight_map.update({key: name for key, _ in shard})
    total = sum(spec.nbytes for _, spec in entries)
    _write_json(
        out_dir / INDEX_FILE,
        {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))},
    )


def _plan_shards(entries: list[tuple[str, TensorSpec]], limit: int) -> list[list[tuple[str, TensorSpec]]]:
    """Consecutive groups of at most ``limit`` bytes; a tensor larger than ``limit`` gets its own shard."""
    shards: list[list[tuple[str, TensorSpec]]] = [[]]
    size = 0
    for entry in entries:
        if shards[-1] and size + entry[1].nbytes > limit:
            shards.append([])
            size = 0
        shards[-1].append(entry)
        size += entry[1].nbytes
    return shards


def _hf_config_for(cfg: ModelConfig, mask_id: int, original: dict | None) -> dict:
    """config_to_hf's fields over the imported config.json, so its other fields survive.

    ModelConfig only knows the padded row count, so while it is unchanged the original's own
    ``vocab_size`` / ``embedding_size`` entries (or their absence) are kept verbatim.
    """
    fresh = config_to_hf(cfg, mask_id)
    if original is None:
        return fresh
    merged = {**original, **fresh}
    original_rows = original.get("embedding_size") or original.get("vocab_size")
    if original_rows == cfg.vocab_size:
        for key in ("vocab_size", "embedding_size"):
            if key in original:
                merged[key] = original[key]
            else:
                merged.pop(key)
    return merged
