"""An evaluation: the tasks by name, the model with its sampler and scorer, the loop over tasks,
and the results record (``results.json``, optionally a W&B run)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from lit_illada.checkpoints.loader import LoadedModel, load
from lit_illada.checkpoints.run_record import epoch_of, write_atomically
from lit_illada.config.build import build_sampler
from lit_illada.config.checks import positive_int
from lit_illada.config.choices import given
from lit_illada.config.errors import ConfigError
from lit_illada.config.paths import CONF_DIR
from lit_illada.config.wandb_settings import check_wandb_config, stable_run_id, wandb_init_kwargs
from lit_illada.evaluation.completion import wants_bos
from lit_illada.evaluation.tasks import EvalModel
from lit_illada.evaluation.tasks.jsonl import load_jsonl_task
from lit_illada.scoring import AutoregressiveScorer, Scorer


def build_tasks(cfg: DictConfig) -> list:
    """The tasks chosen in the ``tasks`` group (``tasks=[a,b]``, or one name; ``tasks.<name>.<key>=``
    changes one task's option) and the JSONL files in ``task_files``; the top-level ``limit``
    overrides every task's own. Every task is built (and every file checked) before any model loads."""
    chosen, files = cfg.get("tasks") or {}, list(cfg.get("task_files") or [])
    if not chosen and not files:
        available = sorted(p.stem for p in (CONF_DIR / "tasks").glob("*.yaml"))
        raise ConfigError(f"tasks=[]: choose at least one of {available}, or a .jsonl file")
    limit = positive_int(cfg, "limit") if cfg.limit is not None else None
    tasks = []
    for node in chosen.values():
        task = instantiate(node)
        if limit is not None:
            task.limit = limit
        tasks.append(task)
    for path in files:
        try:
            tasks.append(load_jsonl_task(path, limit=limit, seed=cfg.seed))
        except ValueError as err:
            raise ConfigError(str(err)) from None
    names = [task.name for task in tasks]
    if len(set(names)) < len(names):
        raise ConfigError(f"tasks: two tasks named alike in {names}; rename a file (its stem names the task)")
    return tasks


def choose_scorer(loaded: LoadedModel, scoring: DictConfig, explicit: bool, choices=None) -> Scorer:
    """The configured scorer for a denoising model; exact likelihood for a left-to-right one.

    An explicit ``scoring=`` that cannot apply (a diffusion scorer on an AR checkpoint) is
    refused rather than replaced behind the user's back.
    """
    if loaded.decoding.causal:
        if explicit:
            name = (choices or {}).get("scoring") or scoring._target_.rsplit(".", 1)[-1]
            raise ConfigError(
                f"scoring={name}: does not apply to {loaded.path}, an "
                f"autoregressive checkpoint (it is scored by its exact likelihood); drop scoring="
            )
        return AutoregressiveScorer(mask_id=loaded.mask_id)
    return instantiate(scoring, mask_id=loaded.mask_id)


def build_eval_model(cfg: DictConfig, device: torch.device, explicit_scoring: bool = False) -> tuple[EvalModel, Path]:
    try:
        loaded = load(cfg.ckpt, device=device, key="ckpt")
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(str(err)) from err
    scorer = choose_scorer(loaded, cfg.scoring, explicit_scoring, cfg.get("choices"))
    model = EvalModel(
        loaded.net, loaded.tokenizer, loaded.decoding, None, scorer, wants_bos(cfg, loaded),
        samplers=SamplerForLength(cfg, loaded.tokenizer),
    )
    return model, loaded.run_dir


class SamplerForLength:
    """The configured sampler resized to a task's answer length, unless the command line fixed it.

    ``sampler.gen_length`` given: the sampler as configured, for every task. Otherwise
    ``gen_length`` is the task's length, in one block (rounded up to whole blocks when
    ``sampler.block_length`` was given), and a fixed-schedule sampler takes one step per
    position unless ``sampler.steps`` was given.
    """

    def __init__(self, cfg: DictConfig, tokenizer) -> None:
        self.cfg, self.tokenizer = cfg, tokenizer
        self.built: dict[int, object] = {}

    def __call__(self, length: int | None):
        """The sampler for answers of ``length`` tokens; None: the sampler exactly as configured."""
        if length is None or given(self.cfg, "sampler.gen_length"):
            length = int(self.cfg.sampler.gen_length)
            if length not in self.built:
                self.built[length] = self._build(OmegaConf.create({"sampler": self.cfg.sampler}), length)
            return self.built[length]
        if length not in self.built:
            node = OmegaConf.to_container(self.cfg.sampler, resolve=True)  # a copy: the recorded config stays as given
            node = OmegaConf.create({"sampler": node})
            sampler = node.sampler
            if not given(self.cfg, "sampler.gen_length"):
                if given(self.cfg, "sampler.block_length"):
                    length = -(-length // sampler.block_length) * sampler.block_length
                else:
                    sampler.block_length = length
                sampler.gen_length = length
                if "steps" in sampler and sampler.steps is not None and not given(self.cfg, "sampler.steps"):
                    sampler.steps = length
            self.built[length] = self._build(node, length)
        return self.built[length]

    def _build(self, node: DictConfig, length: int):
        try:
            return build_sampler(node, self.tokenizer)
        except (ValueError, InstantiationException) as err:
            raise ConfigError(f"sampler for answers of {length} tokens: {err.__cause__ or err}") from None


def run_tasks(cfg: DictConfig, model: EvalModel, tasks: list) -> dict:
    """Every task's metrics, with the exact sampler, scorer and config that produced them."""
    torch.manual_seed(cfg.seed)
    results = {
        "ckpt": str(cfg.ckpt),
        "epoch": epoch_of(cfg.ckpt),  # checkpoints/epoch-<k>.ckpt of an SFT-epoch sweep, else None
        "objective": model.decoding.kind,
        "sampler": _describe(model),
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


def wandb_settings(cfg: DictConfig) -> DictConfig:
    """``logger.wandb`` of an evaluation that logs to W&B (``wandb=true``), checked before any work."""
    wandb_cfg = cfg.logger.get("wandb") if cfg.get("logger") is not None else None
    if wandb_cfg is None:
        raise ConfigError(
            "wandb=true: logger.wandb is null (logger=csv or logger=none); drop that logger= "
            "override to log with conf/logger/wandb.yaml's settings, or set wandb=false"
        )
    check_wandb_config(wandb_cfg)
    return wandb_cfg


def log_to_wandb(results: dict, output: Path, wandb_cfg: DictConfig) -> None:
    """One W&B run (job_type eval) per results file, under the ``logger.wandb`` settings that
    training uses; its id follows the file, so a re-run updates it."""
    import wandb  # noqa: PLC0415 - slow import, only when asked

    run_dir = output.parent.parent if output.parent.name == "results" else output.parent  # results/epoch-<k>.json
    name = f"{run_dir.name}-eval" + (f"-epoch{results['epoch']}" if results["epoch"] else "")
    kwargs = wandb_init_kwargs(
        wandb_cfg, name=name, run_id=stable_run_id(str(output.resolve())), job_type="eval",
        directory=output.parent,
    )
    run = wandb.init(**kwargs, config={k: v for k, v in results.items() if k != "tasks"})
    run.summary.update({f"{task}/{key}": value for task, metrics in results["tasks"].items()
                        for key, value in metrics.items() if isinstance(value, (int, float))})
    run.finish()


def _describe(model: EvalModel) -> str:
    """The configured sampler's repr; generation tasks record the one sized for them."""
    try:
        return repr(model.sampler)
    except ConfigError:  # valid only once sized to a task's answers (e.g. sampler.steps=2)
        return "sized per task (see each task's sampler)"
