"""Training entry point: ``python -m lit_illada.train [group=option ...] [key=value ...]``.

Order matters: validate the config and check memory first (seconds, nothing allocated),
then read data and build the model, train, and finally write the run record: summary,
samples and a loss curve.

A run killed at any moment (``kill -9`` included) continues exactly where its newest good
checkpoint left it when the same command (same ``name=``) runs again: model, optimizer, lr
schedule, EMA, data position within the epoch and RNG states all come from the checkpoint.
SIGTERM and SIGUSR1 save a checkpoint at the next batch boundary and exit ``EXIT_PREEMPTED``;
a first Ctrl-C does the same, records ``interrupted`` and exits ``EXIT_INTERRUPTED`` (a second
one stops at once). A finished run started again has nothing to do unless a limit is raised.
A re-run whose settings differ from the run's config.yaml (other than its limits and
runtime-only keys) is refused with the differences unless ``resume=force``; every start and
resume is recorded in ``runs/<name>/starts.jsonl``. One process at a time trains in a run
folder (rank 0 holds ``runs/<name>/.lock``).
"""

# ruff: noqa: E402 - the imports after refuse_busy_run_early are deliberately late
from __future__ import annotations

import sys

from lit_illada.training.run_lock import refuse_busy_run_early

if __name__ == "__main__":
    # Before the imports below, which take seconds: a second process on a busy run folder is
    # refused at once.
    refuse_busy_run_early(sys.argv[1:])

import time
from dataclasses import dataclass
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig

from lit_illada.checkpoints.files import CheckpointSpaceError, newest_good_checkpoint
from lit_illada.checkpoints.run_record import RunRecord
from lit_illada.config.build import build_model_config, build_tokenizer, fill_token_ids
from lit_illada.config.changes import Change
from lit_illada.config.checks import check_train_config, exit_on_bad_input
from lit_illada.config.choices import record_choices
from lit_illada.config.outputs import check_output_folder
from lit_illada.config.overrides import run_cli
from lit_illada.config.parallel import is_launch_rank_zero
from lit_illada.config.paths import CONF_DIR
from lit_illada.planning.plan import flops_per_token, peak_flops
from lit_illada.training.checkpoint_io import AtomicCheckpointIO
from lit_illada.training.loggers import build_loggers, finish_loggers, log_samples_table
from lit_illada.training.module import DiffusionLM, NonFiniteLossError
from lit_illada.training.run import (
    EXIT_INTERRUPTED,  # noqa: F401 - part of the command's contract, as EXIT_PREEMPTED
    EXIT_PREEMPTED,  # noqa: F401 - part of the command's contract (tests and SLURM scripts read it)
    build_callbacks,
    build_module,
    check_launch,
    check_max_time,
    check_memory,
    check_resume_changes,
    check_start_weights,
    describe_limits,
    draw_samples,
    finished_run,
    lift_time_guard,
    name_run,
    open_run_folder,
    prepare_data,
    refuse_if_in_use,
    report,
    resolve_seq_len,
    set_initial_weights,
    start_entry,
    step_checkpoints_callback,
    stop_at_once_on_interrupt,
    stop_on_signal,
    stop_reason,
    summarize,
)


@dataclass
class Fit:
    """What ``start`` builds in the locked run folder, for ``train`` to fit."""

    trainer: L.Trainer
    module: DiffusionLM
    best: ModelCheckpoint
    callbacks: list
    loggers: list
    resume_from: Path | None


def run(cfg: DictConfig) -> dict:
    record_choices(cfg)  # cfg.choices: Hydra's group choices, recorded with the config
    started = time.time()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    check_launch(cfg)
    new_run = name_run(cfg)
    record = RunRecord(Path(cfg.runs_root) / cfg.name)
    refuse_if_in_use(record, new_run)  # another process trains in this folder: refused now

    tokenizer = build_tokenizer(cfg)
    resolve_seq_len(cfg, tokenizer)
    check_train_config(cfg, tokenizer.vocab_size, tokenizer.mask_id)
    time_guard = lift_time_guard(cfg)  # before config.yaml records trainer.max_time
    check_max_time(cfg.trainer)
    step_checkpoints_callback(cfg, record)  # checkpoint.* checked before the folder exists
    if cfg.get("sampler") is not None:
        fill_token_ids(cfg.sampler, tokenizer)  # so config.yaml records the ids actually used
    model_config = build_model_config(cfg)
    check_memory(cfg, model_config)
    check_start_weights(cfg, model_config, record, new_run)
    changes = check_resume_changes(cfg, record, new_run)  # refused: nothing is written
    if not new_run and (finished := finished_run(cfg, record)) is not None:
        return finished  # re-run of a finished run: nothing is written
    check_output_folder(record.checkpoints, "runs_root", given=cfg.runs_root)  # fails now, not after the data

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = prepare_data(cfg, tokenizer)  # a bad corpus fails before the run record is touched
    record, lock, made = open_run_folder(cfg, record, new_run)
    try:
        try:
            limits = describe_limits(cfg.trainer, time_guard)
            fit = start(cfg, record, tokenizer, model_config, changes, limits)
        except BaseException:
            if made:  # start-up failed in a folder this run made: leave nothing behind
                record.discard()
            raise
        return train(cfg, record, fit, datamodule, tokenizer, started)
    finally:
        if lock is not None:
            lock.release()


def start(
    cfg: DictConfig, record: RunRecord, tokenizer, model_config, changes: list[Change], limits: str
) -> Fit:
    """From the locked run folder to the first step: config.yaml and this start's line in
    starts.jsonl, the module and its start weights, loggers and the Trainer. ``changes``: the
    settings that differ from the last start's (allowed ones); ``limits``: where it stops."""
    best, callbacks = build_callbacks(cfg, record)
    module = build_module(cfg, tokenizer, model_config)
    # The newest checkpoint that passes its integrity check (one the run's kill left broken is
    # reported and passed over); every rank picks the same one from the shared folder.
    say = print if is_launch_rank_zero() else (lambda message: None)
    resume_from = newest_good_checkpoint(record.checkpoints, report=say)
    if is_launch_rank_zero():  # one writer; the other ranks run this code too
        record.write_config(cfg)
        record.append_start(start_entry(cfg, resume_from, changes))
    if resume_from is None and cfg.init_from:
        set_initial_weights(module, cfg.init_from)

    module.flops_per_token = flops_per_token(model_config, cfg.data.seq_len)
    # peak_tflops= overrides the device's peak (an unknown GPU); None on CPU: no train/mfu there.
    given_peak = cfg.get("peak_tflops")
    module.peak_flops = given_peak * 1e12 if given_peak is not None else peak_flops(cfg.trainer.accelerator)
    job_type = "sft" if cfg.stage_name == "sft" else "train"
    loggers = build_loggers(cfg, cfg.name, record.root, job_type=job_type)
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        logger=loggers or False,
        callbacks=callbacks,
        default_root_dir=str(record.root),
        plugins=[AtomicCheckpointIO()],
    )
    if is_launch_rank_zero():
        resuming = f" (resuming from {resume_from.name})" if resume_from else ""
        if not resume_from and cfg.stage_name == "sft" and not cfg.init_from:
            resuming = " (SFT from random initialization: no init_from=)"
        params = module.net.num_params()
        print(f"run {cfg.name}: {params:,} parameters -> {record.root}/{resuming}", flush=True)
        if changes:
            forced = " (resume=force)" if any(not change.is_limit for change in changes) else ""
            print(f"run {cfg.name}: continues with changed settings{forced}: "
                  + "; ".join(map(str, changes)), flush=True)
        print(f"run {cfg.name}: stops at {limits}", flush=True)
        if module.peak_flops is None and cfg.trainer.accelerator != "cpu" and torch.cuda.is_available():
            print(f"run {cfg.name}: no peak FLOP/s known for {torch.cuda.get_device_name()}, so no "
                  "train/mfu_*; give peak_tflops=<dense bf16 TFLOP/s>", flush=True)
    return Fit(trainer, module, best, callbacks, loggers, resume_from)


def train(cfg: DictConfig, record: RunRecord, fit: Fit, datamodule, tokenizer, started: float) -> dict:
    """Fit, then write the run record: summary, samples and a loss curve."""
    trainer, module = fit.trainer, fit.module
    ckpt_path = str(fit.resume_from) if fit.resume_from else None
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    except SIGTERMException:  # SIGTERM, SIGUSR1 or a first Ctrl-C, at a batch boundary
        with stop_at_once_on_interrupt(trainer, fit.callbacks, record):
            stop_on_signal(trainer, fit.callbacks, record, summarize(trainer, module, fit.best, started))
    except (NonFiniteLossError, CheckpointSpaceError) as err:
        if trainer.is_global_zero:
            summary = summarize(trainer, module, fit.best, started)
            record.write_summary({**summary, "status": "failed", "error": str(err)})
        raise SystemExit(f"error: {err}") from None
    except (SystemExit, KeyboardInterrupt):  # a second Ctrl-C, in Lightning's hands or while saving
        with stop_at_once_on_interrupt(trainer, fit.callbacks, record):
            raise

    if module.last_validated_step != trainer.global_step:
        # Stopped where Lightning could not validate (StepCheckpoints asks it to at the end):
        # the summary must describe the final weights.
        trainer.validate(module, datamodule=datamodule, verbose=False)
    summary = {**summarize(trainer, module, fit.best, started), "stopped_by": stop_reason(trainer)}
    samples = draw_samples(module, datamodule, tokenizer, cfg)  # every rank: sharded forwards
    if not trainer.is_global_zero:
        return summary
    if samples:
        record.write_samples(samples)
        log_samples_table(fit.loggers, samples)
    record.write_summary(summary)
    finish_loggers(fit.loggers)
    if record.metrics_csv.exists():
        from analysis import load_metrics  # noqa: PLC0415 - matplotlib and pandas are slow to import
        from analysis.figures import plot_loss_curves  # noqa: PLC0415 - (only rank 0 plots)

        plot_loss_curves(load_metrics(record.root), record.loss_curve_png, title=cfg.name)
    report(summary, samples, record)
    return summary


@hydra.main(config_path=str(CONF_DIR), config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    exit_on_bad_input(run, cfg)


if __name__ == "__main__":
    run_cli(main, "train")
