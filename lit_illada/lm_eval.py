"""`python -m lit_illada.lm_eval ...`: lm-eval's CLI with the `lit_illada` model registered.

    python -m lit_illada.lm_eval run --model lit_illada --model_args ckpt=runs/<name> --tasks ...
    torchrun --nproc_per_node 8 -m lit_illada.lm_eval run ...   # data parallel, one process per GPU
    python -m lit_illada.lm_eval export_tasks <dir>     # the embedded tasks as an lm-eval task folder
"""

import sys

from lm_eval.__main__ import cli_evaluate

import lit_illada.evaluation.lm_eval_adapter  # noqa: F401 - registers the model with lm-eval
from lit_illada.config.errors import ConfigError
from lit_illada.evaluation.export import export_mc_nextline


def main() -> None:
    if sys.argv[1:2] == ["export_tasks"]:
        if len(sys.argv) != 3:
            raise SystemExit("usage: python -m lit_illada.lm_eval export_tasks <output dir>")
        print(export_mc_nextline(sys.argv[2]))
        return
    try:
        cli_evaluate()
    except ConfigError as err:  # a bad model_arg or a request the model cannot take: one line, exit 2
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
