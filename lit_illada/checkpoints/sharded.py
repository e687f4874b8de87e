"""Sharded (DCP) checkpoints that ``trainer=fsdp`` writes, read in one process, and their
consolidated form.

A DCP folder holds one ``.distcp`` file per rank, ``.metadata`` and Lightning's ``meta.pt``.
``consolidate`` writes

- ``model.safetensors``: the Transformer's weights (a tied LM head is stored once);
- ``config.json``: the model config (``lit_illada.core.model.ModelConfig`` fields);
- ``run_config.json``: the resolved run config, to rebuild tokenizer and objective.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch.distributed import checkpoint as dcp

from lit_illada.checkpoints.files import sharded_checkpoint

WEIGHTS, MODEL_CONFIG, RUN_CONFIG = "model.safetensors", "config.json", "run_config.json"
MODEL_PREFIX = "state_dict.net."  # where the Transformer's weights sit in a DCP training checkpoint
META_FILE = "meta.pt"  # Lightning's non-tensor part of a DCP checkpoint (loops, callbacks, lit_illada)


def read_metadata(dcp_dir: str | Path) -> dict:
    """The ``lit_illada`` entry of a DCP checkpoint: ``model_config`` and ``run_config``."""
    dcp_dir = Path(dcp_dir)
    if not sharded_checkpoint(dcp_dir):
        raise ValueError(f"{dcp_dir}: not a sharded (DCP) checkpoint folder; it has no .metadata file")
    meta = torch.load(dcp_dir / META_FILE, map_location="cpu", weights_only=True)
    if "lit_illada" not in meta:
        raise ValueError(
            f"{dcp_dir}: not written by lit_illada training (no 'lit_illada' metadata in {META_FILE})"
        )
    return meta["lit_illada"]


def read_model_state(dcp_dir: str | Path) -> dict[str, torch.Tensor]:
    """The Transformer's full weights from a DCP folder, read into one copy in this process."""
    reader = dcp.FileSystemReader(str(dcp_dir))
    stored = reader.read_metadata().state_dict_metadata
    state = {
        key: torch.empty(meta.size, dtype=meta.properties.dtype)
        for key, meta in stored.items()
        if key.startswith(MODEL_PREFIX)
    }
    with warnings.catch_warnings():  # "assuming the intent is to load in a single process": it is
        warnings.simplefilter("ignore", UserWarning)
        dcp.load(state, storage_reader=reader, no_dist=True)
    return {key.removeprefix(MODEL_PREFIX): value for key, value in state.items()}


def consolidate(dcp_dir: str | Path, out_dir: str | Path, dtype: torch.dtype | None = None) -> Path:
    """Write ``out_dir/{model.safetensors, config.json, run_config.json}``; returns ``out_dir``."""
    meta = read_metadata(dcp_dir)
    weights = read_model_state(dcp_dir)
    if meta["model_config"]["tie_embeddings"]:
        weights.pop("lm_head.weight", None)  # the same tensor as wte.weight
    if dtype is not None:
        weights = {key: value.to(dtype) for key, value in weights.items()}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({key: value.contiguous() for key, value in weights.items()}, str(out_dir / WEIGHTS))
    (out_dir / MODEL_CONFIG).write_text(json.dumps(meta["model_config"], indent=2) + "\n")
    (out_dir / RUN_CONFIG).write_text(json.dumps(meta["run_config"], indent=2) + "\n")
    return out_dir
