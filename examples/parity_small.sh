#!/usr/bin/env bash
# Diffusion vs AR at equal compute, end to end on a CPU in well under 30 minutes:
# train both objectives, evaluate both on the embedded tasks, print the comparison table.
set -euo pipefail
EVAL="tasks=[mc_nextline,docstring_to_body,infill] limit=${LIMIT:-50} scoring.mc_num=${MC_NUM:-32}"
for objective in diffusion autoregressive; do
  python -m lit_illada.train experiment=parity_small objective=$objective name=parity-$objective "$@"
  python -m lit_illada.evaluate ckpt=runs/parity-$objective $EVAL
done
python -m analysis parity runs/parity-diffusion runs/parity-autoregressive --out runs/parity.md
