"""Checkpoint conversions: ``python -m lit_illada.convert <command> ...``.

    consolidate <dcp_dir> <out_dir>              a sharded (FSDP) checkpoint -> one safetensors file
    from_hf <hf_dir> <out_dir> [--mask-id N]     LLaDA / iLLaDA HF checkpoint -> lit_illada layout
    to_hf <source> <out_dir> [--shard-size-gb]   lit_illada model dir, run dir or .ckpt -> HF layout

``trainer=fsdp`` saves DCP folders (one ``.distcp`` file per rank, ``.metadata`` and Lightning's
``meta.pt``). Consolidation reads one in a single process (no process group, no GPU) and writes

- ``model.safetensors``: the Transformer's weights (a tied LM head is stored once);
- ``config.json``: the model config (``lit_illada.core.model.ModelConfig`` fields);
- ``run_config.json``: the resolved run config, to rebuild tokenizer and objective.

``lit_illada.load`` reads every one of these folders (and the DCP folder as it is).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lit_illada.checkpoints import hf
from lit_illada.checkpoints.loader import load
from lit_illada.checkpoints.sharded import consolidate
from lit_illada.config.parallel import DTYPES


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
    if args.command == "consolidate":
        return consolidate(args.dcp_dir, args.out_dir, DTYPES[args.dtype] if args.dtype else None)
    if args.command == "from_hf":
        return hf.import_hf(
            args.hf_dir, args.out_dir, mask_id=args.mask_id, dtype=args.dtype, overwrite=args.overwrite
        )
    # A lit_illada model directory streams tensor by tensor; anything else is loaded first.
    source = args.source if hf.is_lit_dir(args.source) else load(args.source).net
    return hf.export_hf(
        source, args.out_dir, mask_id=args.mask_id, dtype=args.dtype,
        shard_size_bytes=int(args.shard_size_gb * 1e9), overwrite=args.overwrite,
    )


if __name__ == "__main__":
    main()
