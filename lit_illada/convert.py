"""Checkpoint conversions: ``python -m lit_illada.convert <command> ...``.

    consolidate <dcp_dir> <out_dir>              a sharded (FSDP) checkpoint -> one safetensors file
    from_hf <hf_dir> <out_dir> [--mask-id N]     LLaDA / iLLaDA HF checkpoint -> lit_illada layout
    to_hf <source> <out_dir> [--shard-size-gb]   lit_illada model dir, run dir or .ckpt -> HF layout
          [--push-to-hub <repo>] [--private]     that transformers loads (trust_remote_code), then upload

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

from omegaconf import OmegaConf

from lit_illada.checkpoints import hf, hf_hub
from lit_illada.checkpoints.loader import detect, load
from lit_illada.checkpoints.run_record import RunRecord
from lit_illada.checkpoints.sharded import consolidate
from lit_illada.config.errors import ConfigError
from lit_illada.config.outputs import check_output_folder
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
    to_hf.add_argument("--shard-size-gb", type=positive_gb, default=5.0, help="largest shard (default 5)")
    to_hf.add_argument("--mask-id", type=int, default=None)
    to_hf.add_argument(
        "--push-to-hub", metavar="REPO_ID", default=None,
        help="then upload the folder to this Hub model repo (huggingface_hub; log in with `hf auth login`)",
    )  # fmt: skip
    to_hf.add_argument("--private", action="store_true", help="with --push-to-hub: create the repo private")
    for sub in (from_hf, to_hf):
        sub.add_argument("--dtype", default=None, choices=sorted(hf.DTYPE_NAMES), help="default: as stored")
        sub.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    try:
        check_out_dir(args.out_dir)  # before any weight is read
        print(f"wrote {run_command(args)}")
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        parser.exit(2, f"error: {as_flags(str(err))}\n")


# The library's keyword arguments in its messages, as this command's flags.
FLAGS = {"pass overwrite=True": "pass --overwrite", "pass mask_id=...": "pass --mask-id N"}


def as_flags(message: str) -> str:
    for keyword, flag in FLAGS.items():
        message = message.replace(keyword, flag)
    return message


def positive_gb(text: str) -> float:
    value = float(text)
    if not value > 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text}: must be > 0 (gigabytes per shard, e.g. 5)")
    return value


def check_out_dir(out_dir: Path) -> None:
    """A conversion writes model files: never into a training run's folder (where a loader would
    then find them before the run's checkpoints), nor where a file is in the way or nothing can be written."""
    record = RunRecord(out_dir)
    if record.checkpoints.is_dir() or any(
        path.is_file() for path in (record.config_yaml, record.summary_json, record.metrics_csv)
    ):
        raise ValueError(
            f"out_dir={out_dir} is a training run's folder; write the converted model to a new "
            f"directory (e.g. {out_dir}-hf)"
        )
    try:
        check_output_folder(out_dir, "out_dir")
    except ConfigError as err:
        raise ValueError(str(err)) from None


def run_command(args: argparse.Namespace) -> Path:
    if args.command == "consolidate":
        return consolidate(args.dcp_dir, args.out_dir, DTYPES[args.dtype] if args.dtype else None)
    if args.command == "from_hf":
        return hf.import_hf(
            args.hf_dir, args.out_dir, mask_id=args.mask_id, dtype=args.dtype, overwrite=args.overwrite
        )
    return export_to_hf(args)


def export_to_hf(args: argparse.Namespace) -> Path:
    """``to_hf``: the folder transformers loads, with a model card; uploaded with ``--push-to-hub``."""
    if args.private and not args.push_to_hub:
        raise ValueError("--private applies to the repo that --push-to-hub creates; add --push-to-hub <repo>")
    if args.push_to_hub:
        hf_hub.check_repo_id(args.push_to_hub)  # before anything is written
    # A lit_illada model directory streams tensor by tensor; anything else is loaded first.
    if hf.is_lit_dir(args.source):
        source, run_config, origin = args.source, None, None
    else:
        loaded = load(args.source)
        if loaded.kind != "diffusion":
            raise ValueError(
                f"{args.source}: trained with the {loaded.kind} objective (causal attention), but to_hf "
                "exports masked diffusion models, whose transformers code attends in both directions; "
                "use this checkpoint through lit_illada.load (generate, evaluate, lm_eval) instead"
            )
        source, origin = loaded.net, f"`{loaded.path}`"
        run_config = OmegaConf.to_container(loaded.run_config, resolve=True)
        if detect(loaded.path) == "hf":  # released weights: no training config came with them
            run_config, origin = None, f"the Hugging Face checkpoint `{loaded.path}`"
    out = hf.export_hf(
        source, args.out_dir, mask_id=args.mask_id, dtype=args.dtype,
        shard_size_bytes=int(args.shard_size_gb * 1e9), overwrite=args.overwrite,
        run_config=run_config, exported_from=origin, model_id=args.push_to_hub,
    )
    if args.push_to_hub:
        print(f"uploaded {out} to {hf_hub.push_folder(out, args.push_to_hub, private=args.private)}")
    return out


if __name__ == "__main__":
    main()
