"""Training entry point: ``python -m lit_illada.train [group=option ...] [key=value ...]``.

Order matters: validate the config and check memory first (seconds, nothing allocated),
then read data and build the model, train, and finally write the run record: summary,
samples and a loss curve.

A run killed at any moment (``kill -9`` included) continues exactly where its newest good
checkpoint left it when the same command (same ``name=``) runs again: model, optimizer, lr
schedule, EMA, data position within the epoch and RNG states all come from the checkpoint.
SIGTERM and SIGUSR1 save a checkpoint at the next batch boundary and exit ``EXIT_PREEMPTED``.
"""

from __future__ import annotations

import time
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig

from lit_illada.checkpoints.files import CheckpointSpaceError, newest_good_checkpoint
from lit_illada.checkpoints.run_record import RunRecord
from lit_illada.config.build import build_model_config, build_tokenizer, fill_token_ids
from lit_illada.config.checks import check_train_config, exit_on_bad_input
from lit_illada.config.choices import record_choices
from lit_illada.config.overrides import run_cli
from lit_illada.config.parallel import is_launch_rank_zero
from lit_illada.config.paths import CONF_DIR
from lit_illada.planning.plan import flops_per_token, peak_flops
from lit_illada.training.checkpoint_io import AtomicCheckpointIO
from lit_illada.training.loggers import build_loggers, finish_loggers, log_samples_table
from lit_illada.training.module import NonFiniteLossError
from lit_illada.training.run import (
    EXIT_PREEMPTED,  # noqa: F401 - part of the command's contract (tests and SLURM scripts read it)
    build_callbacks,
    build_module,
    check_launch,
    check_memory,
    check_start_weights,
    draw_samples,
    name_run,
    prepare_data,
    report,
    resolve_seq_len,
    set_initial_weights,
    stop_on_signal,
    summarize,
)


def run(cfg: DictConfig) -> dict:
    record_choices(cfg)  # cfg.choices: Hydra's group choices, recorded with the config
    started = time.time()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    check_launch(cfg)
    name_run(cfg)
    record = RunRecord(Path(cfg.runs_root) / cfg.name)

    tokenizer = build_tokenizer(cfg)
    resolve_seq_len(cfg, tokenizer)
    check_train_config(cfg, tokenizer.vocab_size, tokenizer.mask_id)
    if cfg.get("sampler") is not None:
        fill_token_ids(cfg.sampler, tokenizer)  # so config.yaml records the ids actually used
    model_config = build_model_config(cfg)
    check_memory(cfg, model_config)
    check_start_weights(cfg, model_config, record)

    checkpoint, callbacks = build_callbacks(cfg, record)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = prepare_data(cfg, tokenizer)  # a bad corpus fails before the run record is touched
    record.create()
    if is_launch_rank_zero():  # one writer; the other ranks run this code too
        record.write_config(cfg)
    module = build_module(cfg, tokenizer, model_config)
    # The newest checkpoint that passes its integrity check (one the run's kill left broken is
    # reported and passed over); every rank picks the same one from the shared folder.
    say = print if is_launch_rank_zero() else (lambda message: None)
    resume_from = newest_good_checkpoint(record.checkpoints, report=say)
    if resume_from is None and cfg.init_from:
        set_initial_weights(module, cfg.init_from)

    module.flops_per_token = flops_per_token(model_config, cfg.data.seq_len)
    module.peak_flops = peak_flops(cfg.trainer.accelerator)  # None on CPU: no train/mfu there
    loggers = build_loggers(cfg, cfg.name, record.root, job_type="sft" if cfg.stage_name == "sft" else "train")
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
        print(f"run {cfg.name}: {module.net.num_params():,} parameters -> {record.root}/{resuming}", flush=True)
    ckpt_path = str(resume_from) if resume_from else None
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    except SIGTERMException:
        stop_on_signal(trainer, callbacks, record)
    except (NonFiniteLossError, CheckpointSpaceError) as err:
        if trainer.is_global_zero:
            summary = summarize(trainer, module, checkpoint, started)
            record.write_summary({**summary, "status": "failed", "error": str(err)})
        raise SystemExit(f"error: {err}") from None

    if module.last_validated_step != trainer.global_step:
        # Stopped between validations (max_time, or max_steps not a multiple of the interval):
        # the summary must describe the final weights.
        trainer.validate(module, datamodule=datamodule, verbose=False)
    summary = summarize(trainer, module, checkpoint, started)
    samples = draw_samples(module, datamodule, tokenizer, cfg)  # every rank: sharded forwards
    if not trainer.is_global_zero:
        return summary
    if samples:
        record.write_samples(samples)
        log_samples_table(loggers, samples)
    record.write_summary(summary)
    finish_loggers(loggers)
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
