#!/usr/bin/env bash
# The three shipped sweeps at their tiny presets, a scoring comparison, and every figure the
# analysis package draws from them: what the README's "Sweeps and analysis" section shows.
# About 15 minutes on 2 CPU cores. OUT=<dir> picks where the figures go (default docs/figures).
set -euo pipefail
ROOT=${ROOT:-runs/tiny_sweeps}
OUT=${OUT:-docs/figures}
SWEEPS="sweeps_root=$ROOT/sweeps"
# The model of the sweeps' tiny presets (2 layers, 64 wide), pretrained briefly: the SFT base
# and the checkpoint whose samplers denoising_steps compares.
TINY="model.n_layers=2 model.d_model=64 model.n_heads=2 model.n_kv_heads=2 model.ffn_hidden=128"
python -m lit_illada.train name=base runs_root=$ROOT $TINY data.seq_len=128 trainer.max_steps=300 \
  trainer.precision=32-true logger=csv num_samples=0

python -m lit_illada.sweep sweep=objective preset=tiny $SWEEPS
python -m lit_illada.sweep sweep=sft_epochs preset=tiny $SWEEPS -- init_from=$ROOT/base/checkpoints/last.ckpt
python -m lit_illada.sweep sweep=denoising_steps preset=tiny n_trials=16 $SWEEPS -- ckpt=$ROOT/base

# Likelihood vs confidence scoring of the same checkpoint on the multiple-choice task.
python -m lit_illada.evaluate ckpt=$ROOT/base tasks=[mc_nextline,infill] limit=40 scoring=likelihood \
  scoring.mc_num=8 output=$ROOT/scoring/likelihood/results.json
python -m lit_illada.evaluate ckpt=$ROOT/base tasks=[mc_nextline,infill] limit=40 scoring=confidence \
  output=$ROOT/scoring/confidence/results.json

# One source per figure: each sweep folder holds its study and the run records of its trials.
python -m analysis sft_epochs --source $ROOT/sweeps/sft_epochs --out $OUT
python -m analysis quality_vs_nfe --source $ROOT/sweeps/denoising_steps --out $OUT
python -m analysis quality_vs_latency --source $ROOT/sweeps/denoising_steps --out $OUT
python -m analysis ablation --source $ROOT/sweeps/objective --out $OUT
python -m analysis scoring --source $ROOT/scoring --out $OUT
python -m analysis loss_curves --source $ROOT/base --train --out $OUT
python -m analysis reference_table --source $ROOT/scoring --out $OUT
