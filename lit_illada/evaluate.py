"""Evaluation entry point on the embedded tasks.

    python -m lit_illada.evaluate ckpt=runs/<name> tasks=[mc_nextline,docstring_to_body] sampler=threshold scoring=confidence
    python -m lit_illada.evaluate ckpt=runs/<name> tasks=[addition,addition_mc,data/my_eval.jsonl]

Writes ``results.json`` into the checkpoint's run directory (or ``output=``): every task's
metrics, with NFE and latency beside each generation score, and the exact sampler and
scorer used. An autoregressive checkpoint is scored by exact likelihood and decodes left to
right, so diffusion and AR runs share one table; an explicit ``scoring=`` on such a
checkpoint is refused.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from lit_illada.config.checks import exit_on_bad_input, pick_device
from lit_illada.config.choices import given, record_choices
from lit_illada.config.outputs import check_output_file
from lit_illada.config.overrides import run_cli
from lit_illada.config.paths import CONF_DIR
from lit_illada.evaluation.runner import (
    build_eval_model,
    build_tasks,
    log_to_wandb,
    run_tasks,
    wandb_settings,
    write_results,
)
from lit_illada.evaluation.tasks.jsonl import split_task_files


def evaluate(cfg: DictConfig) -> dict:
    record_choices(cfg)  # cfg.choices: Hydra's group choices, recorded with the config
    device = pick_device(cfg.device)
    tasks = build_tasks(cfg)
    wandb_cfg = wandb_settings(cfg) if cfg.wandb else None  # a bad logger.wandb fails before any work
    if cfg.output:  # where the results go is checked before any work: none is lost at the end
        check_output_file(cfg.output, "output")
    model, run_dir = build_eval_model(cfg, device, explicit_scoring=given(cfg, "scoring"))
    output = Path(cfg.output) if cfg.output else check_output_file(run_dir / "results.json", "output")
    results = run_tasks(cfg, model, tasks)
    write_results(results, output)
    if wandb_cfg is not None:
        log_to_wandb(results, output, wandb_cfg)
    return results


@hydra.main(config_path=str(CONF_DIR), config_name="evaluate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    exit_on_bad_input(evaluate, cfg)


if __name__ == "__main__":
    sys.argv[1:] = split_task_files(sys.argv[1:])  # tasks=[x.jsonl] -> task_files=[x.jsonl]
    run_cli(main, "evaluate")
