"""python -m analysis <command> ...: tables and figures from run records.

    python -m analysis parity runs/parity-diffusion runs/parity-autoregressive [--out table.md]
    python -m analysis loss_curve runs/<name> [--out loss.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from analysis.figures import plot_loss_curves
from analysis.records import load_metrics
from analysis.tables import parity_table, to_markdown


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m analysis")
    sub = parser.add_subparsers(dest="command", required=True)
    parity = sub.add_parser("parity", help="diffusion vs AR table from run records")
    parity.add_argument("runs", nargs="+")
    parity.add_argument("--out", default=None, help="also write the markdown table here")
    curve = sub.add_parser("loss_curve", help="train/val NLL against step for one run")
    curve.add_argument("run")
    curve.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    if args.command == "parity":
        table = to_markdown(parity_table(args.runs))
        print(table)
        if args.out:
            Path(args.out).write_text(table)
    else:
        out = args.out or str(Path(args.run) / "loss_curve.png")
        print(plot_loss_curves(load_metrics(args.run), out, title=Path(args.run).name))


if __name__ == "__main__":
    main()
