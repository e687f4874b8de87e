#!/usr/bin/env bash
# The six findings from a fresh clone, then docs/findings.md and docs/figures/ from their records.
# Each finding is one command with a CPU preset fixed in steps (same seeds, same numbers on any
# machine); their models are cached under FINDINGS_ROOT (default runs/findings), so a re-run
# only evaluates. FINDINGS_SEEDS=0,1,2 by default.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="examples/findings${PYTHONPATH:+:$PYTHONPATH}"
ROOT=${FINDINGS_ROOT:-runs/findings}
for finding in quality_vs_nfe variable_length scoring sft_epochs diffusion_vs_ar repetition; do
  echo "== $finding"
  start=$SECONDS
  python "examples/findings/$finding.py"
  echo "$finding: $((SECONDS - start)) s"
done
python -m analysis findings --source "$ROOT" --out docs
