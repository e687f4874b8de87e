#!/usr/bin/env bash
# The six findings from a fresh clone, then docs/findings.md and docs/figures/ from their records.
# Each finding is one command with a CPU preset fixed in steps (same seeds, same numbers on any
# machine); their models are cached under FINDINGS_ROOT (default runs/findings), so a re-run
# only evaluates. FINDINGS_SEEDS=0,1,2 by default.
#
# The sort models four findings share are trained first, as their own step; diffusion_vs_ar
# trains the stdlib models that repetition writes with and sft_epochs fine-tunes, so it runs
# before both. Every step prints its time and the total comes last, beside the training tokens/s
# of each run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="examples/findings${PYTHONPATH:+:$PYTHONPATH}"
ROOT=${FINDINGS_ROOT:-runs/findings}
for step in task_models quality_vs_nfe variable_length scoring diffusion_vs_ar repetition sft_epochs; do
  echo "== $step"
  start=$SECONDS
  python "examples/findings/$step.py"
  echo "$step: $((SECONDS - start)) s"
done
python -m analysis findings --source "$ROOT" --out docs
echo "findings.sh: $SECONDS s in all"
