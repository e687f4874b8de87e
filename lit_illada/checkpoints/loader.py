"""ONE loader for every model this project writes or imports.

    loaded = lit_illada.load("runs/my-run")                 # a run directory: its best, else last, checkpoint
    loaded = lit_illada.load("runs/my-run/checkpoints/step-400.ckpt")
    loaded = lit_illada.load("runs/fsdp-run/checkpoints/last.ckpt")   # a sharded (DCP) folder
    loaded = lit_illada.load("exports/my-run")              # consolidated safetensors (convert consolidate)
    loaded = lit_illada.load("models/llada-8b")             # a directory written by convert from_hf
    loaded = lit_illada.load("hf/LLaDA-8B-Base", dtype="bf16")        # an HF LLaDA / iLLaDA folder, as is
    logits = loaded.net(ids)                                # (B, L) -> (B, L, V)

Whatever the origin, the result is a ``LoadedModel``: the ``Transformer`` in eval mode, the
tokenizer (None when an imported folder has no tokenizer that builds offline), the objective,
the run config and the model's ``decoding`` (denoising or left to right), which decides how it
generates and which scorers apply (``lit_illada.sampling.decoding``).

``read_weights`` is the same dispatch without building a model: the weights and the model
config behind ``init_from=``; ``check_compatible`` is the one check that a checkpoint's model
is the one a run configures. Training checkpoints load with ``weights_only=True``: no pickled
code ever runs, and a truncated or corrupt file is refused with its name.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from safetensors.torch import load_file

from lit_illada.checkpoints import hf, sharded
from lit_illada.checkpoints.files import CheckpointError, safe_load, sharded_checkpoint, verify_checkpoint
from lit_illada.checkpoints.run_record import checkpoint_candidates
from lit_illada.config.build import build_objective
from lit_illada.core.model import ModelConfig, Transformer
from lit_illada.diffusion import AllPositions, DiffusionObjective, ElboWeighting, LinearSchedule
from lit_illada.sampling.decoding import Decoding, Denoising, decoding_for

log = logging.getLogger(__name__)

# Model fields that do not change the weights: a checkpoint loads across them.
RUNTIME_ONLY_FIELDS = ("attn_backend", "init_std", "name")


@dataclass
class LoadedModel:
    net: Transformer
    tokenizer: Any
    objective: Any
    run_config: DictConfig
    path: Path  # the file or folder actually read
    decoding: Decoding  # how it generates and which scorers apply: denoising or left to right

    @property
    def kind(self) -> str:
        """"diffusion" or "autoregressive"."""
        return self.decoding.kind

    @property
    def mask_id(self) -> int:
        return self.net.mask_id

    @property
    def run_dir(self) -> Path:
        """The run directory a checkpoint file sits in (``runs/<name>/``), else the folder read."""
        parent = self.path.parent
        return parent.parent if parent.name == "checkpoints" else (self.path if self.path.is_dir() else parent)


@dataclass
class Weights:
    """A checkpoint's backbone weights and what it says of its model (None when it says nothing)."""

    state: dict[str, torch.Tensor]
    model_config: dict | None
    run_config: dict | None
    path: Path


def load(
    path: str | Path,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str | None = None,
    *,
    mask_id: int | None = None,
    key: str | None = None,
) -> LoadedModel:
    """The model saved at ``path`` on ``device`` in ``dtype`` (None keeps the stored dtype).

    ``mask_id`` is for HF folders only, whose config.json may lack ``mask_token_id`` or carry
    LLaDA's under iLLaDA (mask id 5); every other kind recorded its own when it was written.
    ``key`` names the setting that gave ``path`` in error messages (``ckpt``, ``init_from``).
    """
    path = resolve(path, key)
    kind = detect(path, key)
    if mask_id is not None and kind != "hf":
        raise ValueError(
            f"{_named(path, key)}: mask_id applies to Hugging Face directories only; this {kind} model recorded its "
            "mask id when it was written (to change it, re-import the HF directory with convert from_hf)"
        )
    dtype = hf.resolve_dtype(dtype)
    if kind in ("hf", "imported"):
        return _load_imported(path, kind, mask_id, device, dtype)
    weights = read_weights(path, key)
    net = _build(weights.model_config, weights.state).to(device=device, dtype=dtype)
    return _from_run(net, weights.run_config, path)


def resolve(path: str | Path, key: str | None = None) -> Path:
    """``path`` itself, or for a run directory its best (else last) checkpoint."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{_named(path, key)}: no such file or run directory (expected a checkpoint, a run directory or a model directory)")
    if path.is_dir() and _folder_kind(path) is None:
        for candidate in checkpoint_candidates(path):
            if candidate.exists():
                return candidate
        raise ValueError(
            f"{_named(path, key)}: not a model lit_illada can load. Expected one of: a training checkpoint (.ckpt file or "
            f"sharded folder), a run directory (checkpoints/best.ckpt or checkpoints/last.ckpt), a "
            f"consolidated model directory (convert consolidate), a directory written by convert from_hf "
            f"(import_hf: config.json + {hf.WEIGHTS_FILE}), or a Hugging Face LLaDA directory (config.json + {hf.INDEX_FILE} or {hf.WEIGHTS_FILE})"
        )
    return path


def detect(path: Path, key: str | None = None) -> str:
    """"checkpoint" (a Lightning .ckpt file), "sharded", "consolidated", "imported" or "hf"."""
    if path.is_file():
        if path.suffix == ".safetensors" or path.name == hf.CONFIG_FILE:
            raise ValueError(f"{_named(path, key)}: pass the directory that holds this file, not the file itself")
        return "checkpoint"
    kind = _folder_kind(path)
    if kind is None:
        raise ValueError(f"{_named(path, key)}: a folder without a model; pass a run directory or a checkpoint")
    return kind


def _folder_kind(path: Path) -> str | None:
    if sharded_checkpoint(path):
        return "sharded"
    if (path / sharded.WEIGHTS).is_file() and (path / sharded.RUN_CONFIG).is_file():
        return "consolidated"
    if hf.is_lit_dir(path):
        return "imported"
    if hf.is_hf_dir(path):
        return "hf"
    return None


def read_weights(path: str | Path, key: str | None = None) -> Weights:
    """The backbone weights of any training-side checkpoint (``init_from=`` reads through this)."""
    path = resolve(path, key)
    kind = detect(path, key)
    if kind == "consolidated":
        return Weights(
            load_file(str(path / sharded.WEIGHTS)),
            json.loads((path / sharded.MODEL_CONFIG).read_text()),
            json.loads((path / sharded.RUN_CONFIG).read_text()),
            path,
        )
    if kind in ("hf", "imported"):
        model = _load_imported(path, kind, None, "cpu", None)
        return Weights(model.net.state_dict(), model.net.config.to_dict(), None, path)
    try:
        verify_checkpoint(path)  # truncation or flipped bytes fail here, with the file named
        if kind == "sharded":
            meta = sharded.read_metadata(path)
            return Weights(sharded.read_model_state(path), meta["model_config"], meta["run_config"], path)
        state = safe_load(path, mmap=True)  # tensors are read as they are copied, not all up front
    except CheckpointError as err:
        raise ValueError(
            f"{_named(path, key)}: cannot be used ({err}); point at the run directory (its newest good checkpoint "
            f"is chosen) or at another checkpoints/*.ckpt"
        ) from err
    meta = state.get("lit_illada") if isinstance(state, dict) else None
    if meta is None:
        raise ValueError(f"{_named(path, key)}: not written by lit_illada training (no 'lit_illada' metadata)")
    net_state = {k.removeprefix("net."): v for k, v in state["state_dict"].items() if k.startswith("net.")}
    return Weights(net_state, meta["model_config"], meta["run_config"], path)


def saved_model_config(path: str | Path, key: str | None = None) -> dict | None:
    """What a checkpoint says of its model, read cheaply (a .ckpt file is memory-mapped)."""
    path = resolve(path, key)
    kind = detect(path, key)
    if kind == "checkpoint":
        try:
            state = safe_load(path, mmap=True)
        except CheckpointError as err:  # still a CheckpointError: a resume may fall back past it
            raise CheckpointError(f"{key}={err}" if key else str(err)) from err
        return state.get("lit_illada", {}).get("model_config") if isinstance(state, dict) else None
    if kind == "sharded":
        return sharded.read_metadata(path)["model_config"]
    if kind == "consolidated":
        return json.loads((path / sharded.MODEL_CONFIG).read_text())
    if kind == "imported":
        return hf.read_lit_dir(path).config.to_dict()
    return hf.config_from_hf(json.loads((path / hf.CONFIG_FILE).read_text()), None)[0].to_dict()


def model_config_diff(saved: dict | None, current: ModelConfig) -> dict:
    """``{field: (checkpoint, this run)}`` for every weight-shaping field that differs."""
    mine = current.to_dict()
    return {
        key: (value, mine.get(key))
        for key, value in (saved or {}).items()
        if key not in RUNTIME_ONLY_FIELDS and mine.get(key) != value
    }


def check_compatible(
    path: str | Path, current: ModelConfig, what: str, fix: str = "", key: str | None = None
) -> None:
    """The one check that the model saved at ``path`` is the model this run configures.

    ``what`` starts the message (``init_from=<path> was trained``, ``name=x: <dir> holds a run``);
    ``fix`` adds a way out besides passing the same model config.
    """
    diff = model_config_diff(saved_model_config(path, key), current)
    if diff:
        raise ValueError(
            f"{what} a different model config (checkpoint vs this run: {diff}); pass the model= "
            f"preset (and model.* overrides) it was trained with{fix}"
        )


def _named(path: Path | str, key: str | None) -> str:
    return f"{key}={path}" if key else str(path)


def _build(model_config: dict, weights: dict[str, torch.Tensor]) -> Transformer:
    """A Transformer holding ``weights``, built on meta: no throw-away initialization."""
    config = ModelConfig(**model_config)
    with torch.device("meta"):
        net = Transformer(config)
    if config.tie_embeddings and "lm_head.weight" not in weights:
        weights = {**weights, "lm_head.weight": weights["wte.weight"]}  # consolidate stores it once
    net.load_state_dict(weights, assign=True)
    if config.tie_embeddings:
        net.lm_head.weight = net.wte.weight  # assign=True gave the head its own Parameter
    return net.eval()


def _from_run(net: Transformer, run_config: dict, path: Path) -> LoadedModel:
    """A model trained here: tokenizer and objective rebuilt from the recorded run config."""
    run_config = OmegaConf.create(run_config)
    tokenizer = instantiate(run_config.tokenizer)
    net.mask_id = tokenizer.mask_id
    objective = build_objective(run_config, tokenizer)
    return LoadedModel(net, tokenizer, objective, run_config, path, decoding_for(objective))


def _load_imported(path: Path, kind: str, mask_id: int | None, device, dtype) -> LoadedModel:
    """Released LLaDA / iLLaDA weights (as HF or imported): LLaDA's objective, the folder's tokenizer."""
    if kind == "imported":
        net, meta = hf.load_lit_model(path, device, dtype)
        mask_id = meta.mask_id
    else:
        net, mask_id, _ = hf.load_hf_model(path, mask_id, device=device, dtype=dtype)
    net.mask_id = mask_id
    objective = DiffusionObjective(LinearSchedule(), ElboWeighting(), AllPositions(), mask_id=mask_id)
    run_config = OmegaConf.create({"source": str(path)})
    return LoadedModel(net.eval(), _folder_tokenizer(path, mask_id), objective, run_config, path, Denoising())


def _folder_tokenizer(folder: Path, mask_id: int):
    """``HFTokenizer`` for the folder's tokenizer.json, or None when there is none or it cannot be built.

    A tokenizer that fails to build is reported, not raised: the logits are still usable.
    """
    if not (folder / "tokenizer.json").is_file():
        return None
    from lit_illada.data.tokenizers import HFTokenizer  # noqa: PLC0415 - tokenizers is slow to import

    try:
        return HFTokenizer(str(folder), mask_id=mask_id)
    except (ValueError, OSError) as err:
        log.warning("%s: tokenizer.json found but no tokenizer built (%s); tokenizer is None", folder, err)
        return None
