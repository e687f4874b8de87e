"""Evaluation entry point on the embedded tasks.

    python -m lit_illada.evaluate ckpt=runs/<name> tasks=[mc_nextline,docstring_to_body] sampler=threshold scoring=confidence

Writes ``results.json`` into the checkpoint's run directory (or ``output=``): every task's
metrics, with NFE and latency beside each generation score, and the exact sampler and
scorer used. An autoregressive checkpoint is scored by exact likelihood and decodes left to
right, so diffusion and AR runs share one table.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from lit_illada.builder import CONF_DIR, build_sampler
from lit_illada.checkpoint import load_checkpoint
from lit_illada.config_checks import ConfigError, exit_on_bad_input, positive_int
from lit_illada.generate import pick_device, wants_bos
from lit_illada.override_errors import run_cli
from lit_illada.run_record import epoch_of, write_atomically
from lit_illada.scoring import AutoregressiveScorer
from lit_illada.tasks import EvalModel


def build_tasks(cfg: DictConfig) -> list:
    names = list(cfg.tasks)
    available = sorted(p.stem for p in (CONF_DIR / "task").glob("*.yaml"))
    unknown = [name for name in names if name not in available]
    if unknown or not names:
        raise ConfigError(f"tasks={names}: unknown {unknown}; choose from {available}")
    tasks = []
    for name in names:
        task_cfg = OmegaConf.load(CONF_DIR / "task" / f"{name}.yaml")
        if cfg.limit is not None:
            task_cfg.limit = positive_int(cfg, "limit")
        tasks.append(instantiate(task_cfg))
    return tasks


def build_eval_model(cfg: DictConfig, device: torch.device) -> tuple[EvalModel, Path]:
    try:
        loaded = load_checkpoint(cfg.ckpt, device=device)
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(str(err)) from err
    sampler = build_sampler(cfg, loaded.tokenizer)
    if loaded.objective.causal:  # the AR baseline: exact likelihood, whatever scoring= says
        scorer = AutoregressiveScorer(mask_id=loaded.tokenizer.mask_id)
    else:
        scorer = instantiate(cfg.scoring, mask_id=loaded.tokenizer.mask_id)
    model = EvalModel(loaded.net, loaded.tokenizer, loaded.objective, sampler, scorer, wants_bos(cfg, loaded))
    run_dir = loaded.path.parent.parent if loaded.path.parent.name == "checkpoints" else loaded.path.parent
    return model, run_dir


def evaluate(cfg: DictConfig) -> dict:
    device = pick_device(cfg.device)
    tasks = build_tasks(cfg)
    model, run_dir = build_eval_model(cfg, device)
    torch.manual_seed(cfg.seed)
    results = {
        "ckpt": str(cfg.ckpt),
        "epoch": epoch_of(cfg.ckpt),  # checkpoints/epoch-<k>.ckpt of an SFT-epoch sweep, else None
        "objective": "autoregressive" if model.causal else "diffusion",
        "sampler": repr(model.sampler),
        "scorer": repr(model.scorer),
        "config": OmegaConf.to_container(cfg, resolve=True),  # sampler.steps etc. for analysis
        "tasks": {},
    }
    for task in tasks:
        started = time.perf_counter()
        with torch.no_grad():
            metrics = task.run(model)
        metrics["wall_seconds"] = round(time.perf_counter() - started, 2)
        results["tasks"][task.name] = metrics
        print(f"{task.name}: {json.dumps(metrics)}", flush=True)
    output = Path(cfg.output) if cfg.output else run_dir / "results.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    # Atomic: a sweep reads the file as soon as it appears, and a killed run leaves none.
    write_atomically(output, json.dumps(results, indent=2) + "\n")
    print(f"wrote {output}")
    if cfg.wandb:
        log_to_wandb(results, output)
    return results


def log_to_wandb(results: dict, output: Path) -> None:
    """One W&B run (job_type eval) per results file; its id follows the file, so a re-run updates it."""
    import wandb  # noqa: PLC0415 - slow import, only when asked

    from lit_illada.loggers import stable_run_id, wandb_group, wandb_mode  # noqa: PLC0415

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


@hydra.main(config_path=str(CONF_DIR), config_name="evaluate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    exit_on_bad_input(evaluate, cfg)


if __name__ == "__main__":
    run_cli(main, "evaluate")
