"""An evaluation: the tasks by name, the model with its sampler and scorer, the loop over tasks,
and the results record (``results.json``, optionally a W&B run)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from lit_illada.checkpoints.loader import LoadedModel, load
from lit_illada.checkpoints.run_record import epoch_of, write_atomically
from lit_illada.config.build import build_sampler
from lit_illada.config.checks import positive_int
from lit_illada.config.errors import ConfigError
from lit_illada.config.paths import CONF_DIR
from lit_illada.evaluation.completion import wants_bos
from lit_illada.evaluation.tasks import EvalModel
from lit_illada.scoring import AutoregressiveScorer, Scorer


def task_names(cfg: DictConfig) -> list[str]:
    """``tasks=[a,b]``; a single name without brackets (``tasks=infill``) is one task, not letters."""
    return [cfg.tasks] if isinstance(cfg.tasks, str) else list(cfg.tasks)


def build_tasks(cfg: DictConfig) -> list:
    names = task_names(cfg)
    available = sorted(p.stem for p in (CONF_DIR / "tasks").glob("*.yaml"))
    unknown = [name for name in names if name not in available]
    if unknown or not names:
        raise ConfigError(f"tasks={names}: unknown {unknown}; choose from {available}")
    tasks = []
    for name in names:
        task_cfg = OmegaConf.load(CONF_DIR / "tasks" / f"{name}.yaml")
        if cfg.limit is not None:
            task_cfg.limit = positive_int(cfg, "limit")
        tasks.append(instantiate(task_cfg))
    return tasks


def choose_scorer(loaded: LoadedModel, scoring: DictConfig, explicit: bool) -> Scorer:
    """The configured scorer for a denoising model; exact likelihood for a left-to-right one.

    An explicit ``scoring=`` that cannot apply (a diffusion scorer on an AR checkpoint) is
    refused rather than replaced behind the user's back.
    """
    if loaded.decoding.causal:
        if explicit:
            raise ConfigError(
                f"scoring={scoring._target_.rsplit('.', 1)[-1]}: does not apply to {loaded.path}, an "
                f"autoregressive checkpoint (it is scored by its exact likelihood); drop scoring="
            )
        return AutoregressiveScorer(mask_id=loaded.mask_id)
    return instantiate(scoring, mask_id=loaded.mask_id)


def build_eval_model(cfg: DictConfig, device: torch.device, explicit_scoring: bool = False) -> tuple[EvalModel, Path]:
    try:
        loaded = load(cfg.ckpt, device=device)
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(str(err)) from err
    sampler = build_sampler(cfg, loaded.tokenizer)
    scorer = choose_scorer(loaded, cfg.scoring, explicit_scoring)
    model = EvalModel(loaded.net, loaded.tokenizer, loaded.decoding, sampler, scorer, wants_bos(cfg, loaded))
    return model, loaded.run_dir


def run_tasks(cfg: DictConfig, model: EvalModel, tasks: list) -> dict:
    """Every task's metrics, with the exact sampler, scorer and config that produced them."""
    torch.manual_seed(cfg.seed)
    results = {
        "ckpt": str(cfg.ckpt),
        "epoch": epoch_of(cfg.ckpt),  # checkpoints/epoch-<k>.ckpt of an SFT-epoch sweep, else None
        "objective": model.decoding.kind,
        "sampler": repr(model.sampler),
        "scorer": repr(model.scorer),
        "config": OmegaConf.to_container(cfg, resolve=True),  # sampler.steps, choices etc. for analysis
        "tasks": {},
    }
    for task in tasks:
        started = time.perf_counter()
        with torch.no_grad():
            metrics = task.run(model)
        metrics["wall_seconds"] = round(time.perf_counter() - started, 2)
        results["tasks"][task.name] = metrics
        print(f"{task.name}: {json.dumps(metrics)}", flush=True)
    return results


def write_results(results: dict, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    # Atomic: a sweep reads the file as soon as it appears, and a killed run leaves none.
    write_atomically(output, json.dumps(results, indent=2) + "\n")
    print(f"wrote {output}")


def log_to_wandb(results: dict, output: Path) -> None:
    """One W&B run (job_type eval) per results file; its id follows the file, so a re-run updates it."""
    import wandb  # noqa: PLC0415 - slow import, only when asked

    from lit_illada.training.loggers import stable_run_id, wandb_group, wandb_mode  # noqa: PLC0415 - W&B only

    run_dir = output.parent.parent if output.parent.name == "results" else output.parent  # results/epoch-<k>.json
    name = f"{run_dir.name}-eval" + (f"-epoch{results['epoch']}" if results["epoch"] else "")
    run = wandb.init(
        project="lit_illada", job_type="eval", dir=str(output.parent), name=name, id=stable_run_id(str(output.resolve())),
        group=wandb_group(None), mode=wandb_mode("auto"), resume="allow",
        config={k: v for k, v in results.items() if k != "tasks"},
    )
    run.summary.update({f"{task}/{key}": value for task, metrics in results["tasks"].items()
                        for key, value in metrics.items() if isinstance(value, (int, float))})
    run.finish()
