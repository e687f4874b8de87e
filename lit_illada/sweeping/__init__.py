"""The Optuna sweep driver behind ``python -m lit_illada.sweep``, one job per module.

errors      SweepConfigError (exit code 2), TrialFailed, SweepInterrupted
definition  find a sweep file (sweeps/<name>.yaml) and parse and check it, search space included
validate    before any trial runs: the required keys, the checkpoints named, every candidate composed
model_paths the checkpoints named by ckpt= and init_from= exist and look like checkpoints
commands    what a trial runs (train, evaluate, train_then_evaluate) and where it leaves its metrics
objective   one trial: params -> subprocesses (own process group, own GPUs) -> pruning -> metrics
study       the storage (SQLite by default, any database URL, a journal file), sampler and pruner
            (Hydra _target_), the study and its identity
workers     the trial budget handed out exactly once; worker threads, interruption, stale trials
report      per-trial lines, the trials table, best trial or Pareto front, trials.csv, the W&B run
driver      the driver's options (conf/sweep.yaml + the command line), then plan and run the sweep

May import optuna (with sqlalchemy), hydra, omegaconf and rich, and of this project only
lit_illada.config (paths, overrides, wandb_settings) and lit_illada.checkpoints.run_record (none of
which imports torch). Never torch, lightning or wandb at import time: every trial runs in a
subprocess, and wandb is imported inside report.log_study, only when the sweep logs to W&B.

Hydra's own Optuna sweeper (hydra-optuna-sweeper) pins optuna<3 and is no longer maintained,
and --multirun runs every job inside one process tree it controls; a sweep here calls Optuna
directly and runs every trial as its own subprocesses (``python -m lit_illada.train`` and/or
``python -m lit_illada.evaluate``), which may themselves launch several GPU ranks.
"""
