"""One call from any saved model to a module that maps token ids to logits.

    model = lit_illada.load("runs/my-run")            # a training run (or a .ckpt file)
    model = lit_illada.load("models/llada-8b")        # a directory written by import_hf
    model = lit_illada.load("hf/LLaDA-8B-Base", dtype="bf16")  # an HF LLaDA directory, as is
    logits = model(ids)                               # (B, L) -> (B, L, V)

Whatever the origin, the result is a ``lit_illada.model.Transformer`` in eval mode carrying
``mask_id`` and ``tokenizer`` (None when no tokenizer can be built offline), so samplers and
scorers need not know where the weights came from.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from lit_illada import hf_interop
from lit_illada.model import Transformer

log = logging.getLogger(__name__)


def load(
    path: str | Path,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str | None = None,
    *,
    mask_id: int | None = None,
) -> Transformer:
    """The model saved at ``path``, on ``device``, in ``dtype`` (None keeps the stored dtype).

    ``path`` is one of: a lit_illada model directory (``import_hf`` output), a Hugging Face
    LLaDA / iLLaDA directory (converted in memory, one tensor at a time), a training run
    directory, or a ``.ckpt`` file. ``mask_id`` is for HF directories only, whose config.json
    may lack ``mask_token_id`` or carry LLaDA's under iLLaDA (mask id 5); the other kinds
    recorded theirs when they were written.
    """
    path = Path(path)
    kind = detect(path)
    if mask_id is not None and kind != "hf":
        raise ValueError(
            f"{path}: mask_id applies to Hugging Face directories only; this {kind} model recorded its "
            "mask id when it was written (to change it, re-import the HF directory: import_hf(mask_id=...))"
        )
    if kind == "checkpoint":
        return _load_training_checkpoint(path, device, dtype)
    if kind == "lit":
        model, meta = hf_interop.load_lit_model(path, device, dtype)
        mask_id = meta.mask_id
    else:
        model, mask_id, _ = hf_interop.load_hf_model(path, mask_id, device=device, dtype=dtype)
    return _attach(model, mask_id, _folder_tokenizer(path, mask_id))


def detect(path: Path) -> str:
    """Which kind of saved model ``path`` is: "lit", "hf" or "checkpoint"."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    if path.is_file():
        if path.suffix == ".safetensors" or path.name == hf_interop.CONFIG_FILE:
            raise ValueError(f"{path}: pass the directory that holds this file, not the file itself")
        return "checkpoint"
    if hf_interop.is_lit_dir(path):
        return "lit"
    if hf_interop.is_hf_dir(path):
        return "hf"
    if _has_training_checkpoint(path):
        return "checkpoint"
    raise ValueError(
        f"{path}: not a model lit_illada can load. Expected one of: a directory written by import_hf "
        f"(config.json + {hf_interop.WEIGHTS_FILE}); a Hugging Face LLaDA directory (config.json + "
        f"{hf_interop.INDEX_FILE} or {hf_interop.WEIGHTS_FILE}); a training run directory "
        "(checkpoints/best.ckpt or checkpoints/last.ckpt); or a .ckpt file"
    )


def _has_training_checkpoint(folder: Path) -> bool:
    names = ("checkpoints/best.ckpt", "checkpoints/last.ckpt", "best.ckpt", "last.ckpt")
    return any((folder / name).is_file() for name in names)


def _load_training_checkpoint(path: Path, device, dtype) -> Transformer:
    from lit_illada.checkpoint import load_checkpoint  # noqa: PLC0415 - imports Hydra; only this path needs it

    loaded = load_checkpoint(path, device=device, dtype=hf_interop.resolve_dtype(dtype))
    return _attach(loaded.net, loaded.tokenizer.mask_id, loaded.tokenizer)


def _folder_tokenizer(folder: Path, mask_id: int):
    """``HFTokenizer`` for the folder's tokenizer.json, or None when there is none or it cannot be built.

    A tokenizer that fails to build is reported, not raised: the logits are still usable.
    """
    if not (folder / "tokenizer.json").is_file():
        return None
    from lit_illada.data.tokenizers import HFTokenizer  # noqa: PLC0415

    try:
        return HFTokenizer(str(folder), mask_id=mask_id)
    except (ValueError, OSError) as err:
        log.warning(
            "%s: tokenizer.json found but no tokenizer built (%s); model.tokenizer is None", folder, err
        )
        return None


def _attach(model: Transformer, mask_id: int, tokenizer) -> Transformer:
    model.mask_id = mask_id
    model.tokenizer = tokenizer
    return model.eval()
