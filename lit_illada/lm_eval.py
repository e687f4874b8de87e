"""`python -m lit_illada.lm_eval ...`: lm-eval's CLI with the `lit_illada` model registered."""

from lm_eval.__main__ import cli_evaluate

import lit_illada.evaluation.lm_eval_adapter  # noqa: F401 - registers the model with lm-eval

if __name__ == "__main__":
    cli_evaluate()
