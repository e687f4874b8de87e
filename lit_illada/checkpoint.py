"""Load what training wrote, without Hydra composition or Lightning: a model ready to sample.

A training checkpoint carries its model config and resolved run config (see
``DiffusionLM.on_save_checkpoint``), so the backbone, tokenizer and objective can be rebuilt
from the file alone. Loading uses ``weights_only=True``: no pickled code ever runs. A
truncated or corrupt checkpoint is refused with the file named (``checkpoint_files.verify_checkpoint``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from lit_illada.checkpoint_files import CheckpointError, safe_load, verify_checkpoint
from lit_illada.model import ModelConfig, Transformer


@dataclass
class LoadedCheckpoint:
    net: Transformer
    tokenizer: object
    objective: object
    run_config: DictConfig
    path: Path


def resolve_checkpoint_path(path: str | Path) -> Path:
    """A .ckpt file, or a run directory (its best, else last, checkpoint)."""
    path = Path(path)
    if path.is_dir() and not path.name.endswith(".ckpt") and not (path / "model.safetensors").exists():
        for candidate in (path / "checkpoints" / "best.ckpt", path / "checkpoints" / "last.ckpt", path / "best.ckpt", path / "last.ckpt"):
            if candidate.exists():
                return candidate
        raise FileNotFoundError(f"ckpt={path}: a directory without checkpoints/best.ckpt or checkpoints/last.ckpt")
    if not path.exists():
        raise FileNotFoundError(f"ckpt={path}: no such file or run directory")
    return path


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype | None = None) -> LoadedCheckpoint:
    from hydra.utils import instantiate  # noqa: PLC0415

    from lit_illada.builder import build_objective  # noqa: PLC0415 - avoids a Lightning import cycle

    path = resolve_checkpoint_path(path)
    from lit_illada import convert  # noqa: PLC0415 - sharded/consolidated formats live there

    if path.is_dir() and (path / convert.WEIGHTS).exists():
        if (path / convert.RUN_CONFIG).exists():  # consolidated from one of our training runs
            return convert.load_consolidated(path, device)
        return _load_imported(path, device, dtype)  # imported released weights (convert from_hf)
    try:
        # Truncation or flipped bytes fail here with the file named, not deep inside unpickling.
        verify_checkpoint(path)
        if path.is_dir():  # an FSDP (DCP) checkpoint folder
            return convert.load_sharded(path, device)
        state = safe_load(path)
    except CheckpointError as err:
        raise ValueError(
            f"ckpt={path}: cannot be used ({err}); point ckpt= at the run directory (its newest good "
            f"checkpoint is chosen) or at another checkpoints/*.ckpt"
        ) from err
    meta = state.get("lit_illada") if isinstance(state, dict) else None
    if meta is None:
        raise ValueError(f"ckpt={path}: not written by lit_illada training (no 'lit_illada' metadata)")
    run_config = OmegaConf.create(meta["run_config"])
    net = Transformer(ModelConfig(**meta["model_config"]))
    net.load_state_dict({k.removeprefix("net."): v for k, v in state["state_dict"].items() if k.startswith("net.")})
    net = net.to(device=device, dtype=dtype).eval()
    tokenizer = instantiate(run_config.tokenizer)
    return LoadedCheckpoint(net, tokenizer, build_objective(run_config, tokenizer), run_config, path)


def _load_imported(path: Path, device, dtype) -> LoadedCheckpoint:
    """An imported LLaDA / iLLaDA directory: weights + config, the HF tokenizer beside them."""
    from lit_illada.api import load  # noqa: PLC0415
    from lit_illada.diffusion import AllPositions, DiffusionObjective, ElboWeighting, LinearSchedule  # noqa: PLC0415

    net = load(path, device=device, dtype=dtype)
    if getattr(net, "tokenizer", None) is None:
        raise ValueError(f"ckpt={path}: no tokenizer.json next to the weights; copy the HF tokenizer files there")
    objective = DiffusionObjective(LinearSchedule(), ElboWeighting(), AllPositions(), mask_id=net.mask_id)
    return LoadedCheckpoint(net, net.tokenizer, objective, OmegaConf.create({"source": str(path)}), path)
