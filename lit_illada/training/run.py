"""The steps of a training run that ``python -m lit_illada.train`` composes: launch checks, the run
name, the memory check, data, the module, its start weights, callbacks, signals, samples and the summary.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.callbacks import EMAWeightAveraging, ModelCheckpoint, Timer
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig, OmegaConf, open_dict

from lit_illada.checkpoints.files import CheckpointError, verify_checkpoint
from lit_illada.checkpoints.loader import check_compatible, read_weights
from lit_illada.checkpoints.run_record import RunRecord
from lit_illada.checkpoints.source_version import git_state
from lit_illada.config.build import build_model_config, build_objective, build_sampler, compile_requested
from lit_illada.config.changes import Change, config_changes
from lit_illada.config.checks import check_devices
from lit_illada.config.choices import given
from lit_illada.config.errors import ConfigError
from lit_illada.config.parallel import is_launch_rank_zero, world_size
from lit_illada.config.paths import CONF_DIR
from lit_illada.core.model import ModelConfig
from lit_illada.data.sft import fitting_seq_len
from lit_illada.planning.memory import available_memory
from lit_illada.planning.plan import layout_from_config, make_plan
from lit_illada.training.callbacks import (
    BestCheckpoint,
    EpochCheckpoints,
    PreemptionSignal,
    RNGStates,
    StepCheckpoints,
)
from lit_illada.training.module import DiffusionLM
from lit_illada.training.run_lock import RunLock

RUN_NAME_ENV = "LIT_ILLADA_RUN_NAME"  # how ranks that Lightning starts learn rank 0's run name
# Exit status after SIGTERM/SIGUSR1 stopped the run with a checkpoint saved: EX_TEMPFAIL
# ("temporary failure, try again"). Non-zero, so a retry loop or scheduler runs it again; the
# same command resumes. Under SLURM the job has been requeued already.
EXIT_PREEMPTED = 75
# Exit status after Ctrl-C stopped the run with a checkpoint saved: 128 + SIGINT, the shell's
# convention, so a retry loop that restarts on 75 does not undo the user's Ctrl-C.
EXIT_INTERRUPTED = 130
RESUME_MODES = ("auto", "force")  # conf/train.yaml's resume=


def default_run_name(cfg: DictConfig) -> str:
    """``<model>-<objective>-<stamp>``; under SLURM the stamp is the job id, which every rank
    shares and a requeued job keeps, so the requeued job resumes the same run."""
    objective = cfg.objective._target_.rsplit(".", 1)[-1].removesuffix("Objective").lower()
    job = os.environ.get("SLURM_JOB_ID")
    stamp = f"slurm{job}" if job else f"{datetime.now():%Y%m%d-%H%M%S}"
    return f"{cfg.model.name}-{objective}-{stamp}"


def name_run(cfg: DictConfig) -> bool:
    """Fill ``name=``; True when it is a new run's default name, which ``open_run_folder``
    claims (another run started in the same second gets ``<name>-2``)."""
    new_run = not cfg.name and not os.environ.get(RUN_NAME_ENV) and "SLURM_JOB_ID" not in os.environ
    with open_dict(cfg):
        cfg.name = cfg.name or os.environ.get(RUN_NAME_ENV) or default_run_name(cfg)
    share_run_name(cfg)
    return new_run


def share_run_name(cfg: DictConfig) -> None:
    if world_size(cfg.trainer) > 1:
        # Lightning starts the other local ranks by re-running this command line, later: they
        # would stamp another time. They inherit the environment, so they take this name.
        os.environ[RUN_NAME_ENV] = cfg.name


def open_run_folder(
    cfg: DictConfig, record: RunRecord, new_run: bool
) -> tuple[RunRecord, RunLock | None, bool]:
    """Create the run folder and, on rank 0, lock it for the run's life (``RunLock``).

    Returns the record (renamed when a new run's default name was taken meanwhile), the lock,
    and whether this call made the folder (it is removed again if start-up fails).
    """
    if not is_launch_rank_zero():
        record.create()
        return record, None, False
    try:
        made = record.create(exclusive=new_run)
    except FileExistsError:  # a default name another run took: the first free <name>-<k>
        if not new_run:  # a file where the folder or its checkpoints/ belongs
            raise ConfigError(
                f"name={cfg.name}: {record.root} holds a file where the run's folders go; move it or "
                f"pass another name="
            ) from None
        base = cfg.name
        for k in itertools.count(2):
            candidate = RunRecord(record.root.with_name(f"{base}-{k}"))
            with suppress(FileExistsError):
                made = candidate.create(exclusive=True)
                break
        record = candidate
        with open_dict(cfg):
            cfg.name = record.root.name
        share_run_name(cfg)
    except OSError as err:
        raise ConfigError(
            f"runs_root={cfg.runs_root}: cannot create {record.root} ({err.strerror}); "
            f"pass a folder you can write"
        ) from None
    lock = RunLock(record.root)
    lock.acquire()  # refused: the holder may have made the folder too (same name= at once); it stays
    return record, lock, made


def refuse_if_in_use(record: RunRecord, new_run: bool) -> None:
    """A run folder another process trains in is refused before the slow part of start-up."""
    if not new_run and is_launch_rank_zero():
        RunLock(record.root).refuse_if_held()


def finished_run(cfg: DictConfig, record: RunRecord) -> dict | None:
    """The summary of a run that already finished what this command asks, else None.

    A finished run re-run with the same settings has nothing to do: training it again would
    rewrite its results. It continues when the limit that stopped it is raised.
    """
    summary = record.read_summary()
    try:
        if summary.get("status") != "finished" or asks_for_more(cfg.trainer, summary):
            return None
    except (ValueError, TypeError, MisconfigurationException):
        return None  # a stopped_by this version cannot read: resume, as before it was recorded
    if record.last_checkpoint is not None:
        try:
            verify_checkpoint(record.last_checkpoint.resolve())
        except CheckpointError as err:  # e.g. damaged since: redo it from the newest good one
            print(f"warning: run {cfg.name} is finished but its last checkpoint is damaged ({err}); "
                  f"training it again from the newest good checkpoint", flush=True)
            return None
    stopped_by = summary.get("stopped_by")
    why = f" ({stopped_by} reached)" if stopped_by and stopped_by != "other" else ""
    raise_it = f"raise {stopped_by.split('=')[0]}" if why else "change the settings"
    print(
        f"run {cfg.name} is finished at step {summary.get('step')}{why}: nothing to do, {record.root}/ is "
        f"unchanged. To train it further, {raise_it}; for a new run, pass another name=",
        flush=True,
    )
    return summary


def asks_for_more(trainer: DictConfig, summary: dict) -> bool:
    """Whether this command's limits let the finished run train further than it did."""
    key, _, value = str(summary.get("stopped_by", "")).partition("=")
    step = summary.get("step", 0)
    if key == "trainer.max_epochs":
        requested = trainer.get("max_epochs")
        return requested in (None, -1) or requested > int(value)
    if key == "trainer.max_time":
        requested = trainer.get("max_time")
        return requested is None or duration_seconds(requested) > duration_seconds(value)
    if key == "other":
        return False
    # trainer.max_steps, or a summary from before stopped_by was recorded
    return trainer.max_steps == -1 or trainer.max_steps > step


def duration_seconds(max_time: str) -> float:
    """``trainer.max_time`` (DD:HH:MM:SS) in seconds, parsed by Lightning's own Timer (a Timer
    not started yet has its whole duration remaining: public API, no private ``_duration``)."""
    return Timer(duration=max_time).time_remaining()


def check_max_time(trainer: DictConfig) -> None:
    """Refuse a ``trainer.max_time`` Lightning would reject only after the run folder exists."""
    value = trainer.get("max_time")
    if value is None:
        return
    try:
        if not isinstance(value, str):
            raise TypeError
        duration_seconds(value)
    except (MisconfigurationException, TypeError, ValueError):
        raise ConfigError(
            f"trainer.max_time={value!r}: expected DD:HH:MM:SS (00:04:30:00 stops after 4.5 hours), "
            f"or null for no time limit"
        ) from None


def stop_reason(trainer: L.Trainer) -> str:
    """The limit that ended training, as the override that sets it (``trainer.max_steps=400``)."""
    timer = next((cb for cb in trainer.callbacks if isinstance(cb, Timer)), None)
    remaining = timer.time_remaining() if timer is not None else None
    if remaining is not None and remaining <= 0:
        return f"trainer.max_time={format_duration(remaining + timer.time_elapsed())}"
    if trainer.max_steps != -1 and trainer.global_step >= trainer.max_steps:
        return f"trainer.max_steps={trainer.max_steps}"
    if trainer.max_epochs not in (None, -1) and trainer.current_epoch >= trainer.max_epochs:
        return f"trainer.max_epochs={trainer.max_epochs}"
    return "other"


def format_duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"{days:02d}:{hours:02d}:{minutes:02d}:{secs:02d}"


def lift_time_guard(cfg: DictConfig) -> str:
    """trainer=cpu's ``max_time`` guard ends the default run within 5 minutes on a slow CPU. A
    step or epoch limit given on the command line is what was asked for: it runs to the end
    (unless ``trainer.max_time`` is given too). Returns how the limits came about, for the
    start line: ``"kept"`` (the guard applies), ``"lifted"`` or ``""`` (no guard involved)."""
    guard = OmegaConf.load(CONF_DIR / "trainer" / "cpu.yaml").get("max_time")
    if guard is None or cfg.trainer.get("max_time") != guard or given(cfg, "trainer.max_time"):
        return ""
    if given(cfg, "trainer.max_steps") or given(cfg, "trainer.max_epochs"):
        cfg.trainer.max_time = None
        return "lifted"
    return "kept"


def describe_limits(trainer: DictConfig, guard: str) -> str:
    """Where training stops, for the start line (``trainer.max_steps=400 or ...``)."""
    limits = []
    if trainer.get("max_steps", -1) not in (None, -1):
        limits.append(f"trainer.max_steps={trainer.max_steps}")
    if trainer.get("max_epochs") not in (None, -1):
        limits.append(f"trainer.max_epochs={trainer.max_epochs}")
    if trainer.get("max_time") is not None:
        limits.append(f"trainer.max_time={trainer.max_time}")
    text = " or ".join(limits) + (", whichever comes first" if len(limits) > 1 else "")
    text = text or "no step, epoch or time limit"
    if guard == "kept":
        text += (" (trainer.max_time is the CPU default's guard: give trainer.max_steps=N to run N steps, "
                 "or trainer.max_time=null)")
    elif guard == "lifted":
        text += " (a limit given on the command line: the CPU default's trainer.max_time guard is off)"
    return text


def check_resume_changes(cfg: DictConfig, record: RunRecord, new_run: bool) -> list[Change]:
    """A re-run with the same ``name=`` against the run's config.yaml: the settings that differ.

    Limits (``trainer.max_steps``, ...) may change: that is how a run is continued further;
    runtime-only keys are not compared (``lit_illada.config.changes``), and an ``init_from=``
    left out on a resume keeps the recorded one. Any other difference is refused with the list,
    unless ``resume=force`` says to continue with the new values. Called before anything is
    written, on every rank (under srun all of them refuse alike; ranks that Lightning starts
    later read the config.yaml rank 0 wrote, the same settings).
    """
    mode = cfg.get("resume", "auto")
    if mode not in RESUME_MODES:
        raise ConfigError(
            f"resume={mode}: expected auto (resume a run only with the settings it has) or force "
            f"(continue it with the settings given now)"
        )
    if new_run:
        return []
    old = record.read_config()
    if old is None:
        return []  # a run killed before it wrote config.yaml, or not a run folder yet
    if cfg.get("init_from") is None and old.get("init_from") and record.last_checkpoint is not None:
        # A resume takes its weights from the checkpoint, so init_from= need not be given again;
        # the record keeps saying where the run started from (on every rank alike).
        cfg.init_from = old["init_from"]
    # Through YAML as config.yaml was, so that both sides read values the same way.
    new = OmegaConf.to_container(OmegaConf.create(OmegaConf.to_yaml(cfg, resolve=True)))
    changes = config_changes(old, new)
    refused = [change for change in changes if not change.is_limit]
    if refused and mode != "force":
        listed = "".join(f"\n  {change}" for change in refused)
        started = old.get("command_line")
        if started is not None:
            listed += f"\n  (its last start's overrides: {' '.join(map(str, started)) or 'none'})"
        raise ConfigError(
            f"name={cfg.name}: {record.root}/ was trained with other settings ({len(refused)} changed, "
            f"listed below); give the same settings to resume it, resume=force to continue it with "
            f"the new ones, or another name= for a new run{listed}"
        )
    return changes


def start_entry(cfg: DictConfig, resume_from, changes: list[Change]) -> dict:
    """starts.jsonl's line for this start or resume: when, from which checkpoint, the command
    line's overrides, the git commit of the code, and the settings changed since the last start."""
    entry = {
        "time": datetime.now().astimezone().isoformat(timespec="seconds"),
        "resumed_from": resume_from.name if resume_from else None,
        "overrides": list(cfg.command_line) if cfg.get("command_line") is not None else None,
        "resume": cfg.get("resume", "auto"),
    }
    if (git := git_state()) is not None:
        entry["git"] = git
    if changes:
        entry["changed"] = [str(change) for change in changes]
    return entry


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
    if multirun and cfg.get("name") and not OmegaConf.is_interpolation(cfg, "name"):
        # Each job would resume (or be refused by) the run folder the first job wrote.
        raise ConfigError(
            f"name={cfg.name} with Hydra multirun (-m): every job would write the same run folder "
            f"{cfg.runs_root}/{cfg.name}/; drop name= (each job gets its own default name) or give "
            f"each job its own, e.g. 'name={cfg.name}-${{hydra:job.num}}'"
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
        # Plain lists (betas=[0.9, 0.95]): the optimizer state goes into checkpoints, which load with
        # weights_only=True; torch 2.9 keeps an OmegaConf ListConfig there as given (2.13: a tuple).
        optimizer=instantiate(cfg.optimizer, _convert_="all"),
        lr_schedule=instantiate(cfg.lr_schedule) if cfg.get("lr_schedule") else None,
        sampler=build_sampler(cfg, tokenizer),
        byte_level=tokenizer.is_byte_level,
        run_config=OmegaConf.to_container(cfg, resolve=True),
        parallel=instantiate(cfg.parallel) if cfg.get("parallel") else None,  # trainer=fsdp
        compile=compile_requested(cfg),
    )


def check_start_weights(
    cfg: DictConfig, model_config: ModelConfig, record: RunRecord, new_run: bool = False
) -> None:
    """The weights a run starts from hold this model: ``init_from=`` (any checkpoint ``lit_illada.load``
    reads: a file, a run directory, a model directory) and, for a re-run with the same ``name=``,
    the run's own last checkpoint (not for a ``new_run``: a folder of its default name is another
    run's). Checked before anything is written; otherwise loading fails deep in Lightning after
    config.yaml changed."""
    if cfg.init_from is not None:
        try:
            check_compatible(cfg.init_from, model_config, f"init_from={cfg.init_from} was trained with", key="init_from")
        except CheckpointError as err:
            raise ConfigError(
                f"{err}; init_from= takes a training checkpoint (runs/<name>/checkpoints/*.ckpt), a run "
                f"directory or a model directory"
            ) from None
        except (FileNotFoundError, ValueError) as err:
            raise ConfigError(str(err)) from None
    last = None if new_run else record.last_checkpoint
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


def step_checkpoints_callback(cfg: DictConfig, record: RunRecord) -> StepCheckpoints:
    """``StepCheckpoints`` with the ``checkpoint.*`` settings (checked: called before the run
    folder exists, to refuse bad ones, and again once it does)."""
    settings = cfg.checkpoint
    try:
        return StepCheckpoints(
            record.checkpoints,
            every_n_steps=settings.get("every_n_steps"),
            every_minutes=settings.get("every_minutes"),
            keep_last=settings.get("keep_last", 2),
        )
    except ValueError as err:
        raise ConfigError(str(err)) from None


def build_callbacks(cfg: DictConfig, record: RunRecord) -> tuple[ModelCheckpoint, list]:
    """best.ckpt (lowest val/nll, the final validation included), the step checkpoints a killed
    run resumes from (last.ckpt links the newest), what makes that resume exact (RNG states),
    and stopping on SIGUSR1 and Ctrl-C."""
    settings = cfg.checkpoint
    best = BestCheckpoint(record.checkpoints)
    steps = step_checkpoints_callback(cfg, record)
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


def stop_on_signal(trainer: L.Trainer, callbacks: list, record: RunRecord, summary: dict) -> None:
    """SIGTERM, SIGUSR1 or Ctrl-C stopped training at a batch boundary and StepCheckpoints saved
    there: record why in summary.json (``preempted`` or ``interrupted``), say where, requeue a
    SLURM job that asked for it, and exit (``EXIT_PREEMPTED``; ``EXIT_INTERRUPTED`` after Ctrl-C)."""
    preemption = next(cb for cb in callbacks if isinstance(cb, PreemptionSignal))
    status = "interrupted" if preemption.interrupted else "preempted"
    if trainer.is_global_zero:
        record.write_summary({**summary, "status": status})
        what = "Ctrl-C" if preemption.interrupted else "a signal"
        print(
            f"stopped by {what} at step {trainer.global_step}; saved {record.checkpoints / 'last.ckpt'}. "
            f"Run the same command (same name=) to resume.",
            flush=True,
        )
        if preemption.requeue:
            requeue_slurm_job()
    raise SystemExit(EXIT_INTERRUPTED if preemption.interrupted else EXIT_PREEMPTED)


@contextmanager
def stop_at_once_on_interrupt(trainer: L.Trainer, callbacks: list, record: RunRecord) -> Iterator[None]:
    """A second Ctrl-C stops at once: Lightning exits 1 after its own KeyboardInterrupt handling,
    or the KeyboardInterrupt comes through while the first Ctrl-C's checkpoint is written. Say
    what is kept and exit ``EXIT_INTERRUPTED``, as the first Ctrl-C does."""
    preemption = next(cb for cb in callbacks if isinstance(cb, PreemptionSignal))
    try:
        yield
    except KeyboardInterrupt:
        pass
    except SystemExit:
        if not preemption.aborted:
            raise
    if trainer.is_global_zero:
        print(
            f"stopped at once by a second Ctrl-C at step {trainer.global_step}, without saving; the newest "
            f"checkpoint is {record.checkpoints / 'last.ckpt'}. Run the same command (same name=) to resume.",
            file=sys.stderr,
            flush=True,
        )
    raise SystemExit(EXIT_INTERRUPTED)


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
    summary.update(module.run_mfu())  # train/mfu_model and train/mfu_executed over the run (GPU only)
    if checkpoint.best_model_score is not None:
        summary["best/val/nll"] = float(checkpoint.best_model_score)
    return summary


def report(summary: dict, samples: list[dict], record: RunRecord) -> None:
    for i, row in enumerate(samples):
        print(f"\n--- sample {i} (NFE {row['nfe']}, {row['tokens_per_s']} tok/s) ---")
        print(f"{row['prompt']}\033[1m{row['completion']}\033[0m")
    keys = ("val/nll", "val/bpb", "best/val/nll", "train/tokens_per_s", "params", "step", "wall_seconds")
    print("\nsummary:", json.dumps({k: summary[k] for k in keys if k in summary}))
    files = ("config.yaml, starts.jsonl, metrics.csv, summary.json, checkpoints/, samples.jsonl, "
             "loss_curve.png")
    print(f"run record: {record.root}/ ({files})")


