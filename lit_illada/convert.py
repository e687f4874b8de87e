"""Checkpoint conversions: ``python -m lit_illada.convert <command> ...``.

    consolidate <dcp_dir> <out_dir>              a sharded (FSDP) checkpoint -> one safetensors file
    from_hf <hf_dir> <out_dir> [--mask-id N]     LLaDA / iLLaDA HF checkpoint -> lit_illada layout
    to_hf <source> <out_dir> [--shard-size-gb]   lit_illada model dir, run dir or .ckpt -> HF layout

``trainer=fsdp`` saves DCP folders (one ``.distcp`` file per rank, ``.metadata`` and Lightning's
``meta.pt``). Consolidation reads one in a single process (no process group, no GPU) and writes

- ``model.safetensors``: the Transformer's weights (a tied LM head is stored once);
- ``config.json``: the model config (``lit_illada.model.ModelConfig`` fields);
- ``run_config.json``: the resolved run config, to rebuild tokenizer and objective.

``load_consolidated`` (and ``load_sharded`` for a DCP folder as it is) return the same
``LoadedCheckpoint`` as ``lit_illada.checkpoint.load_checkpoint``.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file, save_file
from torch.distributed import checkpoint as dcp

from lit_illada.checkpoint import LoadedCheckpoint
from lit_illada.distributed import DTYPES, sharded_checkpoint
from lit_illada.model import ModelConfig, Transformer

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


def build_net(model_config: dict, weights: dict[str, torch.Tensor]) -> Transformer:
    """A plain Transformer holding ``weights`` (built on meta: no throw-away initialization)."""
    config = ModelConfig(**model_config)
    with torch.device("meta"):
        net = Transformer(config)
    if config.tie_embeddings:
        weights = {**weights, "lm_head.weight": weights["wte.weight"]}
    net.load_state_dict(weights, assign=True)
    if config.tie_embeddings:
        net.lm_head.weight = net.wte.weight  # assign=True gave the head its own Parameter
    return net.eval()


def load_consolidated(path: str | Path, device: str | torch.device = "cpu") -> LoadedCheckpoint:
    """Load what ``consolidate`` wrote: the net, tokenizer and objective of the run."""
    path = Path(path)
    model_config = json.loads((path / MODEL_CONFIG).read_text())
    run_config = json.loads((path / RUN_CONFIG).read_text())
    net = build_net(model_config, load_file(str(path / WEIGHTS)))
    return _loaded(net.to(device), run_config, path)


def load_sharded(dcp_dir: str | Path, device: str | torch.device = "cpu") -> LoadedCheckpoint:
    """Load a DCP training checkpoint as it is, in one process."""
    meta = read_metadata(dcp_dir)
    net = build_net(meta["model_config"], read_model_state(dcp_dir))
    return _loaded(net.to(device), meta["run_config"], Path(dcp_dir))


def _loaded(net: Transformer, run_config: dict, path: Path) -> LoadedCheckpoint:
    from hydra.utils import instantiate  # noqa: PLC0415 - Hydra only when loading a run

    from lit_illada.builder import build_objective  # noqa: PLC0415 - avoids a Lightning import cycle

    run_config = OmegaConf.create(run_config)
    tokenizer = instantiate(run_config.tokenizer)
    return LoadedCheckpoint(net, tokenizer, build_objective(run_config, tokenizer), run_config, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lit_illada.convert", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    merge = commands.add_parser("consolidate", help="a DCP checkpoint folder -> safetensors + config")
    merge.add_argument("dcp_dir", type=Path, help="e.g. runs/<name>/checkpoints/last.ckpt")
    merge.add_argument("out_dir", type=Path)
    merge.add_argument("--dtype", choices=sorted(DTYPES), help="cast the weights (default: as saved)")
    from_hf = commands.add_parser("from_hf", help="HF LLaDA/iLLaDA directory -> lit_illada model directory")
    from_hf.add_argument("hf_dir", type=Path)
    from_hf.add_argument("out_dir", type=Path)
    from_hf.add_argument("--mask-id", type=int, default=None, help="126336 for LLaDA, 5 for iLLaDA; default: config.json")
    to_hf = commands.add_parser("to_hf", help="lit_illada model dir, run dir or .ckpt -> HF LLaDA layout")
    to_hf.add_argument("source", type=Path)
    to_hf.add_argument("out_dir", type=Path)
    to_hf.add_argument("--shard-size-gb", type=float, default=5.0)
    to_hf.add_argument("--mask-id", type=int, default=None)
    for sub in (from_hf, to_hf):
        sub.add_argument("--dtype", default=None, help="bf16 | fp16 | fp32 (default: as stored)")
        sub.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    try:
        print(f"wrote {run_command(args)}")
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        parser.exit(2, f"error: {err}\n")


def run_command(args: argparse.Namespace) -> Path:
    from lit_illada import hf_interop  # noqa: PLC0415 - only these commands need it

    if args.command == "consolidate":
        return consolidate(args.dcp_dir, args.out_dir, DTYPES[args.dtype] if args.dtype else None)
    if args.command == "from_hf":
        return hf_interop.import_hf(
            args.hf_dir, args.out_dir, mask_id=args.mask_id, dtype=args.dtype, overwrite=args.overwrite
        )
    from lit_illada.api import load  # noqa: PLC0415

    # A lit_illada model directory streams tensor by tensor; anything else is loaded first.
    source = args.source if hf_interop.is_lit_dir(args.source) else load(args.source)
    return hf_interop.export_hf(
        source, args.out_dir, mask_id=args.mask_id, dtype=args.dtype,
        shard_size_bytes=int(args.shard_size_gb * 1e9), overwrite=args.overwrite,
    )


if __name__ == "__main__":
    main()
