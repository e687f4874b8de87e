"""Evaluation entry point on the embedded tasks.

    python -m lit_illada.evaluate ckpt=runs/<name> tasks=[mc_nextline,docstring_to_body] sampler=threshold scoring=confidence

Writes ``results.json`` into the checkpoint's run directory (or ``output=``): every task's
metrics, with NFE and latency beside each generation score, and the exact sampler and
scorer used. An autoregressive checkpoint is scored by exact likelihood and decodes left to
right, so diffusion and AR runs share one table; an explicit ``scoring=`` on such a
checkpoint is refused.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from lit_illada.config.checks import exit_on_bad_input, pick_device
from lit_illada.config.overrides import run_cli
from lit_illada.config.paths import CONF_DIR
from lit_illada.evaluation.runner import build_eval_model, build_tasks, log_to_wandb, run_tasks, write_results


def scoring_given(cfg: DictConfig) -> bool:
    """Whether the command line chose ``scoring=`` (rather than the default)."""
    if not HydraConfig.initialized():
        return False
    return any(o.split("=")[0].lstrip("+~") in ("scoring",) for o in HydraConfig.get().overrides.task)


def evaluate(cfg: DictConfig) -> dict:
    device = pick_device(cfg.device)
    tasks = build_tasks(cfg)
    model, run_dir = build_eval_model(cfg, device, explicit_scoring=scoring_given(cfg))
    results = run_tasks(cfg, model, tasks)
    output = Path(cfg.output) if cfg.output else run_dir / "results.json"
    write_results(results, output)
    if cfg.wandb:
        log_to_wandb(results, output)
    return results


@hydra.main(config_path=str(CONF_DIR), config_name="evaluate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    exit_on_bad_input(evaluate, cfg)


if __name__ == "__main__":
    run_cli(main, "evaluate")
