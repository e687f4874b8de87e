"""The Optuna sweep driver behind ``python -m lit_illada.sweep``, one job per module.

options     the driver's options (conf/sweep.yaml + the command line), checked
paths       where conf/ and sweeps/ are, installed or in a checkout
definition  parse and check a sweep file (sweeps/<name>.yaml)
space       search dimensions: how each one is suggested and written as a Hydra override
validate    compose the train config for every candidate value before any trial runs
commands    what a trial runs (train, evaluate, train_then_evaluate) and where it leaves its metrics
process     one trial subprocess: start, poll, kill its whole process group
objective   the Optuna objective: params -> subprocess -> intermediate values, pruning -> metrics
storage     open the study storage (SQLite by default, any database URL, a journal file)
study       sampler, pruner, and the study itself (created once, resumed after)
budget      count finished trials and hand out the remaining ones exactly once
workers     worker threads, interruption, waiting for trials that may still go stale
report      the trials table, the best trial or the Pareto front, trials.csv
wandb_run   the sweep's own W&B run (job_type sweep): the trials table
driver      puts these together
errors      SweepConfigError (exit code 2), TrialFailed, SweepInterrupted

Hydra's own Optuna sweeper (hydra-optuna-sweeper) pins optuna<3 and is no longer maintained,
and --multirun runs every job inside one process tree it controls; a sweep here calls Optuna
directly and runs every trial as its own subprocesses (``python -m lit_illada.train`` and/or
``python -m lit_illada.evaluate``), which may themselves launch several GPU ranks.
"""
