"""The steps of a training run that ``python -m lit_illada.train`` composes: launch checks, the run
name, the memory check, data, the module, its start weights, callbacks, signals, samples and the summary.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import datetime

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.callbacks import EMAWeightAveraging, ModelCheckpoint
from omegaconf import DictConfig, OmegaConf, open_dict

from lit_illada.checkpoints.files import CheckpointError
from lit_illada.checkpoints.loader import check_compatible, read_weights
from lit_illada.checkpoints.run_record import RunRecord
from lit_illada.config.build import build_model_config, build_objective, build_sampler
from lit_illada.config.checks import check_devices
from lit_illada.config.errors import ConfigError
from lit_illada.config.parallel import is_launch_rank_zero, world_size
from lit_illada.core.model import ModelConfig
from lit_illada.data.sft import fitting_seq_len
from lit_illada.planning.memory import available_memory
from lit_illada.planning.plan import layout_from_config, make_plan
from lit_illada.training.callbacks import EpochCheckpoints, PreemptionSignal, RNGStates, StepCheckpoints
from lit_illada.training.module import DiffusionLM

RUN_NAME_ENV = "LIT_ILLADA_RUN_NAME"  # how ranks that Lightning starts learn rank 0's run name
# Exit status after SIGTERM/SIGUSR1 stopped the run with a checkpoint saved: EX_TEMPFAIL
# ("temporary failure, try again"). Non-zero, so a retry loop or scheduler runs it again; the
# same command resumes. Under SLURM the job has been requeued already.
EXIT_PREEMPTED = 75


def default_run_name(cfg: DictConfig) -> str:
    """``<model>-<objective>-<stamp>``; under SLURM the stamp is the job id, which every rank
    shares and a requeued job keeps, so the requeued job resumes the same run."""
    objective = cfg.objective._target_.rsplit(".", 1)[-1].removesuffix("Objective").lower()
    job = os.environ.get("SLURM_JOB_ID")
    stamp = f"slurm{job}" if job else f"{datetime.now():%Y%m%d-%H%M%S}"
    return f"{cfg.model.name}-{objective}-{stamp}"


def name_run(cfg: DictConfig) -> None:
    with open_dict(cfg):
        cfg.name = cfg.name or os.environ.get(RUN_NAME_ENV) or default_run_name(cfg)
    if world_size(cfg.trainer) > 1:
        # Lightning starts the other local ranks by re-running this command line, later: they
        # would stamp another time. They inherit the environment, so they take this name.
        os.environ[RUN_NAME_ENV] = cfg.name


def check_launch(cfg: DictConfig) -> None:
    """Refuse what cannot work across processes, before anything is written (or exported)."""
    check_devices(cfg.trainer)  # before name_run hands the name to ranks that would never start
    multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    if multirun and world_size(cfg.trainer) > 1:
        # Lightning starts ranks 1..N-1 by re-running the command line: each would run the sweep.
        raise ConfigError(
            f"Hydra multirun (-m) cannot be combined with trainer.devices x trainer.num_nodes = "
            f"{world_size(cfg.trainer)} processes; run each configuration as its own command "
            f"(or sweep with python -m lit_illada.sweep, one process per trial)"
        )
    if cfg.get("parallel") and cfg.ema_decay is not None:
        raise ConfigError(
            f"ema_decay={cfg.ema_decay} with trainer=fsdp: Lightning's EMAWeightAveraging keeps an "
            f"unsharded copy of the weights on every rank; set ema_decay=null"
        )


def check_memory(cfg: DictConfig, model_config) -> None:
    """Refuse a run this machine cannot hold, before a single weight is allocated.

    The same plan as ``python -m lit_illada.plan``, against this machine's memory per device.
    """
    if cfg.allow_large:
        return
    accelerator = cfg.trainer.get("accelerator", "cpu")
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={accelerator} but no CUDA device is visible; use trainer=cpu here"
        )
    layout = layout_from_config(cfg)
    have, where = available_memory(accelerator, devices=layout.world // cfg.trainer.get("num_nodes", 1))
    plan = make_plan(model_config, layout, have, where)
    if plan.fits:
        return
    raise ConfigError(
        f"model={model_config.name} does not fit on this machine:\n{plan.render()}\n"
        f"Use model=tiny or model=small here, or GPUs with trainer=fsdp: `python -m lit_illada.plan "
        f"model={model_config.name} trainer.devices=8` shows a layout that fits 8 x 80 GB. "
        f"Pass allow_large=true to skip this check."
    )


def prepare_data(cfg: DictConfig, tokenizer):
    """Read (or load from cache) the data now, so an empty corpus fails before the model is built."""
    datamodule = instantiate(cfg.data, tokenizer=tokenizer)
    try:
        datamodule.prepare_data()
        datamodule.setup("fit")
    except (ValueError, FileNotFoundError) as err:
        raise ConfigError(str(err)) from err
    return datamodule


def resolve_seq_len(cfg: DictConfig, tokenizer) -> None:
    """``data.seq_len=auto``: the length that fits the longest SFT example, recorded as a number."""
    if cfg.data.get("seq_len") != "auto":
        return
    if "source" not in cfg.data:
        raise ConfigError("data.seq_len=auto needs prompt/response data (an SFT data= option); give a number")
    try:
        seq_len = fitting_seq_len(instantiate(cfg.data.source), tokenizer)
    except (ValueError, FileNotFoundError) as err:
        raise ConfigError(str(err)) from None
    cfg.data.seq_len = seq_len
    if is_launch_rank_zero():
        print(f"data.seq_len=auto: {seq_len} tokens fit every example", flush=True)


def build_module(cfg: DictConfig, tokenizer, model_config: ModelConfig | None = None) -> DiffusionLM:
    return DiffusionLM(
        model=model_config or build_model_config(cfg),
        objective=build_objective(cfg, tokenizer),
        optimizer=instantiate(cfg.optimizer),
        lr_schedule=instantiate(cfg.lr_schedule) if cfg.get("lr_schedule") else None,
        sampler=build_sampler(cfg, tokenizer),
        byte_level=tokenizer.is_byte_level,
        run_config=OmegaConf.to_container(cfg, resolve=True),
        parallel=instantiate(cfg.parallel) if cfg.get("parallel") else None,  # trainer=fsdp
    )


def check_start_weights(cfg: DictConfig, model_config: ModelConfig, record: RunRecord) -> None:
    """The weights a run starts from hold this model: ``init_from=`` (any checkpoint ``lit_illada.load``
    reads) and, for a re-run with the same ``name=``, the run's own last checkpoint. Checked
    before anything is written; otherwise loading fails deep in Lightning after config.yaml changed."""
    if cfg.init_from is not None:
        try:
            check_compatible(cfg.init_from, model_config, f"init_from={cfg.init_from} was trained with", key="init_from")
        except (FileNotFoundError, ValueError, CheckpointError) as err:
            raise ConfigError(str(err)) from None
    last = record.last_checkpoint
    if last is not None:
        try:
            check_compatible(
                last, model_config, f"name={cfg.name}: {record.root} holds a run of",
                fix=", or choose a new name= (the same name resumes that run)",
            )
        except CheckpointError:
            return  # damaged: resuming falls back to an older checkpoint, or reports it
        except ValueError as err:
            raise ConfigError(str(err)) from None


def set_initial_weights(module: DiffusionLM, path: str) -> None:
    """Start from a run's weights (SFT), read by the one loader."""
    if module.parallel is not None:
        module.init_from = path  # sharded weights exist only once configure_model has run
        return
    module.net.load_state_dict(read_weights(path).state)


def build_callbacks(cfg: DictConfig, record: RunRecord) -> tuple[ModelCheckpoint, list]:
    """best.ckpt (lowest val/nll), the step checkpoints a killed run resumes from (last.ckpt
    links the newest), what makes that resume exact (RNG states), and preemption by SIGUSR1."""
    settings = cfg.checkpoint
    best = ModelCheckpoint(
        dirpath=record.checkpoints,
        filename="best",
        monitor="val/nll",
        mode="min",
        save_top_k=1,
        auto_insert_metric_name=False,
    )
    try:
        steps = StepCheckpoints(
            record.checkpoints,
            every_n_steps=settings.get("every_n_steps"),
            every_minutes=settings.get("every_minutes"),
            keep_last=settings.get("keep_last", 2),
        )
    except ValueError as err:
        raise ConfigError(str(err)) from None
    callbacks: list = [best, steps, RNGStates(), PreemptionSignal()]
    if settings.every_epoch:
        callbacks.append(EpochCheckpoints(record.checkpoints))
    if cfg.ema_decay is not None:
        callbacks.append(EMAWeightAveraging(decay=cfg.ema_decay))
    return best, callbacks


def requeue_slurm_job() -> None:
    """``scontrol requeue`` this job, as Lightning's SLURM handler would have (see PreemptionSignal)."""
    job = os.environ["SLURM_JOB_ID"]
    if os.environ.get("SLURM_ARRAY_JOB_ID"):
        job = f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    result = subprocess.run(["scontrol", "requeue", job], check=False)
    outcome = "done" if result.returncode == 0 else f"failed ({result.returncode})"
    print(f"scontrol requeue {job}: {outcome}", flush=True)


def stop_on_signal(trainer: L.Trainer, callbacks: list, record: RunRecord) -> None:
    """SIGTERM or SIGUSR1 stopped training at a batch boundary and StepCheckpoints saved there:
    say where, requeue a SLURM job that asked for it, and exit ``EXIT_PREEMPTED``."""
    preemption = next(cb for cb in callbacks if isinstance(cb, PreemptionSignal))
    if trainer.is_global_zero:
        print(
            f"stopped by a signal at step {trainer.global_step}; saved {record.checkpoints / 'last.ckpt'}. "
            f"Run the same command (same name=) to resume.",
            flush=True,
        )
        if preemption.requeue:
            requeue_slurm_job()
    raise SystemExit(EXIT_PREEMPTED)


def draw_samples(module: DiffusionLM, datamodule, tokenizer, cfg: DictConfig) -> list[dict]:
    """Continue a few held-out prompts with the configured sampler (the same prompts on every rank)."""
    if cfg.num_samples <= 0 or module.sampler is None:
        return []
    batch = next(iter(datamodule.val_dataloader()))
    rows = []
    for ids in batch["input_ids"][: cfg.num_samples]:
        prompt = ids[: cfg.sample_prompt_length][None]
        result = module.generate(prompt, generator=torch.Generator(module.device).manual_seed(cfg.seed))
        truth = ids[cfg.sample_prompt_length : cfg.sample_prompt_length + module.sampler.gen_length]
        rows.append(
            {
                "prompt": tokenizer.decode(prompt[0].tolist()),
                "completion": tokenizer.decode(result.generated[0].tolist()),
                "reference": tokenizer.decode(truth.tolist()),
                "sampler": repr(module.sampler),
                "nfe": result.nfe,
                "seconds": round(result.seconds, 4),
                "tokens_per_s": round(result.tokens_per_second, 1),
            }
        )
    return rows


def summarize(trainer: L.Trainer, module: DiffusionLM, checkpoint: ModelCheckpoint, started: float) -> dict:
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if "/" in k}
    tokens_per_s = module.train_tokens / max(module.train_seconds, 1e-9)  # per device
    summary = {
        **metrics,
        "params": module.net.num_params(),
        "step": trainer.global_step,
        "train/tokens_per_s": tokens_per_s,
        "wall_seconds": round(time.time() - started, 1),
        "status": "finished",
    }
    if module.flops_per_token and module.peak_flops:
        summary["train/mfu"] = tokens_per_s * module.flops_per_token / module.peak_flops
    if checkpoint.best_model_score is not None:
        summary["best/val/nll"] = float(checkpoint.best_model_score)
    return summary


def report(summary: dict, samples: list[dict], record: RunRecord) -> None:
    for i, row in enumerate(samples):
        print(f"\n--- sample {i} (NFE {row['nfe']}, {row['tokens_per_s']} tok/s) ---")
        print(f"{row['prompt']}\033[1m{row['completion']}\033[0m")
    keys = ("val/nll", "val/bpb", "best/val/nll", "train/tokens_per_s", "params", "step", "wall_seconds")
    print("\nsummary:", json.dumps({k: summary[k] for k in keys if k in summary}))
    print(f"run record: {record.root}/ (config.yaml, metrics.csv, summary.json, checkpoints/, samples.jsonl, loss_curve.png)")


