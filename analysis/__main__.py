"""python -m analysis <command> ...: tables and figures from run records.

    python -m analysis parity runs/parity-diffusion runs/parity-autoregressive [--out table.md]
    python -m analysis loss_curve runs/<name> [--out loss.png]
    python -m analysis <figure|all> --source <source> --out <dir> [--filters JSON] [--metric M]
    python -m analysis findings --source runs/findings --out docs

figures: sft_epochs, quality_vs_nfe, quality_vs_latency, scoring, ablation, loss_curves,
reference_table. Sources: see analysis/sources.py (runs/, a sweep folder, wandb-offline:<dir>,
wandb:<entity>/<project>, optuna:<storage>[#study]). ``all`` draws every figure the source
has data for and says why it skips the others.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import NoReturn

import matplotlib

from analysis.figures import FIGURES, NotEnoughData, plot_loss_curves
from analysis.records import UnreadableRecord, load_metrics
from analysis.sources import load_epochs, load_runs
from analysis.tables import parity_table, to_markdown
from lit_illada.config.errors import ConfigError
from lit_illada.config.outputs import check_output_file, check_output_folder

SCORE_FIGURES = ("sft_epochs", "quality_vs_nfe", "quality_vs_latency")  # --metric picks their score


def draw(name: str, args: argparse.Namespace) -> None:
    """Draw the figures of ``name`` (or all); print each file written, or why a figure was skipped."""

    try:
        filters = json.loads(args.filters) if args.filters else None
    except json.JSONDecodeError as err:
        refuse(f"--filters {args.filters!r}: not JSON ({err}); e.g. --filters '{{\"stage\": \"sft\"}}'")
    names = list(FIGURES) if name == "all" else [name]
    try:
        runs = load_runs(args.source, filters)
        epochs = load_epochs(args.source, filters) if "sft_epochs" in names else None
    except (FileNotFoundError, ValueError, KeyError) as err:  # a bad source or filter: say which
        refuse(err.args[0] if isinstance(err, KeyError) else str(err))  # str(KeyError) adds quotes
    for figure in names:
        options = {}
        if args.metric and figure in SCORE_FIGURES:
            options["metric"] = args.metric
        if figure == "loss_curves":
            options["train"] = args.train
        try:
            data = FIGURES[figure](epochs if figure == "sft_epochs" else runs, args.out, **options)
        except NotEnoughData as err:
            if name != "all":
                raise SystemExit(f"{figure}: {err}") from None
            print(f"skipped {figure}: {err}")
            continue
        for path in data.attrs["paths"]:
            print(path)


def refuse(message: str) -> NoReturn:
    """A bad input: one line on stderr, exit code 2 (the commands' convention)."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def check_out(args: argparse.Namespace) -> None:
    """--out can be written, before any run is read or figure drawn."""
    try:
        if args.command == "parity":
            if args.out:
                check_output_file(args.out, "--out", example="parity.md")
        elif args.command == "loss_curve":
            out = args.out or Path(args.run) / "loss_curve.png"
            check_output_file(out, "--out", example="loss_curve.png")
        else:  # a figure, all, findings: a folder
            check_output_folder(args.out, "--out")
    except ConfigError as err:
        refuse(str(err))


def main(argv: list[str] | None = None) -> None:
    matplotlib.use("Agg")  # files only, no display; importing analysis leaves the backend alone
    logging.basicConfig(format="%(message)s")  # warnings (a run skipped, and why) as plain lines on stderr
    parser = argparse.ArgumentParser(prog="python -m analysis")
    sub = parser.add_subparsers(dest="command", required=True)
    parity = sub.add_parser("parity", help="diffusion vs AR table from run records")
    parity.add_argument("runs", nargs="+")
    parity.add_argument("--out", default=None, help="also write the markdown table here")
    found = sub.add_parser("findings", help="docs/findings.md and its figures from examples/findings.sh records")
    found.add_argument("--source", required=True, help="the findings root (runs/findings)")
    found.add_argument("--out", required=True, help="folder for findings.md (figures/ inside it)")
    curve = sub.add_parser("loss_curve", help="train/val NLL against step for one run")
    curve.add_argument("run")
    curve.add_argument("--out", default=None)
    for figure in [*FIGURES, "all"]:
        doc = (
            "every figure the source supports" if figure == "all" else FIGURES[figure].__doc__.splitlines()[0]
        )
        command = sub.add_parser(figure, help=doc)
        command.add_argument(
            "--source",
            required=True,
            help="runs/, a sweep folder, wandb-offline:<dir>, "
            "wandb:<entity>/<project> or optuna:<storage_url>[#<study>]",
        )
        command.add_argument("--out", required=True, help="folder for the .png, .pdf and .md files")
        command.add_argument(
            "--filters", default=None, help='JSON: {"column": value} (W&B: a MongoDB filter)'
        )
        command.add_argument(
            "--metric",
            default=None,
            help="the score of sft_epochs and quality_vs_*, e.g. infill/token_accuracy",
        )
        command.add_argument("--train", action="store_true", help="loss_curves: also train/nll, dashed")
    args = parser.parse_args(argv)
    check_out(args)

    if args.command == "parity":
        table = to_markdown(parity_table(args.runs))
        print(table)
        if args.out:
            Path(args.out).write_text(table)
    elif args.command == "findings":
        from analysis.findings import write_findings  # noqa: PLC0415 - matplotlib only when asked

        try:
            for path in write_findings(args.source, args.out):
                print(path)
        except FileNotFoundError as err:
            refuse(str(err))
    elif args.command == "loss_curve":
        out = args.out or str(Path(args.run) / "loss_curve.png")
        try:
            metrics = load_metrics(args.run)
        except (FileNotFoundError, UnreadableRecord) as err:
            refuse(str(err))
        print(plot_loss_curves(metrics, out, title=Path(args.run).name))
    else:
        draw(args.command, args)


if __name__ == "__main__":
    main()
