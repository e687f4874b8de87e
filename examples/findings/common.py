"""What every finding script shares: training through the real command, evaluation in one process
(the model loaded once, every sampler or scorer compared on it), seeds, intervals, the record.

A finding writes ``<root>/<finding>/result.json``:

    {"finding", "claim", "source", "command", "preset", "points": [...],
     "effects": [{"name", "mean", "low", "high", "n", "expect"}], "verdict", "tokens_per_s"}

``python -m analysis findings --source <root>`` turns the results into docs/findings.md and the
figures. Training runs are cached by name: a finding re-run reuses the models it already trained
with the same settings, and stops with the differences if its preset changed (delete the folder
to retrain). Presets are fixed in steps, never in wall time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from lit_illada.checkpoints.loader import load
from lit_illada.config.choices import record_choices
from lit_illada.config.paths import CONF_DIR
from lit_illada.evaluation.completion import wants_bos
from lit_illada.evaluation.metrics import mean_interval
from lit_illada.evaluation.runner import SamplerForLength, build_tasks, choose_scorer
from lit_illada.evaluation.tasks import EvalModel

ROOT = Path(os.environ.get("FINDINGS_ROOT", "runs/findings"))
SEEDS = [int(s) for s in os.environ.get("FINDINGS_SEEDS", "0,1,2").split(",")]
THREADS = os.environ.get("FINDINGS_THREADS", "2")
JOBS = int(os.environ.get("FINDINGS_JOBS", "2"))  # training runs side by side (train_all)


def train(name: str, *overrides: str, root: Path) -> Path:
    """``python -m lit_illada.train`` (the real command). A run that finished with these settings
    is a no-op there; one trained with other settings (a changed preset) is refused with the
    differences listed: delete its folder to retrain it."""
    return train_all([(name, list(overrides))], root)[0]


def train_all(jobs: list[tuple[str, list[str]]], root: Path) -> list[Path]:
    """Several runs ``(name, overrides)``, JOBS at a time in fixed groups taken in order, a group
    sharing THREADS threads. Two single-thread micro runs side by side finish sooner on 2 cores
    than one after the other with 2 threads each, as their small matrix products scale poorly
    across threads (measured, 700 sort steps x 128: two side by side 792 s, one alone 464 s, so
    15% less time a model). The groups never depend on the machine, so each run's thread count
    (and its numbers) is the same everywhere."""
    runs = []
    for first in range(0, len(jobs), JOBS):
        group = jobs[first:first + JOBS]
        threads = max(1, int(THREADS) // len(group))
        started = [_start(name, overrides, root, threads) for name, overrides in group]
        try:
            runs += [_finish(*run) for run in started]
        finally:  # one run failed: stop its partners rather than leave them training unseen
            for *_, process in started:
                if process.poll() is None:
                    process.terminate()
    return runs


def _start(name: str, overrides: list[str], root: Path, threads: int):
    run = root / "runs" / name
    summary = run / "summary.json"
    finished = summary.is_file() and json.loads(summary.read_text()).get("status") == "finished"
    command = [sys.executable, "-m", "lit_illada.train", f"name={name}", f"runs_root={root / 'runs'}",
               "logger=csv", "num_samples=0", f"threads={threads}", *overrides]
    if not finished:
        print("$", " ".join(command[1:]), flush=True)
    return run, finished, time.perf_counter(), subprocess.Popen(command, stdout=subprocess.DEVNULL)


def _finish(run: Path, finished: bool, started: float, process: subprocess.Popen) -> Path:
    if process.wait() != 0:
        raise SystemExit(f"{run.name}: python -m lit_illada.train exited {process.returncode} (its message is "
                         f"above); if the preset changed since {run} was trained, delete that folder to retrain it")
    result = json.loads((run / "summary.json").read_text())
    if not finished:
        print(f"  {run.name}: {result['step']} steps in {time.perf_counter() - started:.0f} s, "
              f"{result['train/tokens_per_s']:,.0f} tokens/s", flush=True)
    return run


def tokens_per_s(*runs: Path) -> float:
    """Mean training throughput of ``runs`` (reported beside every time a finding states)."""
    values = [json.loads((run / "summary.json").read_text())["train/tokens_per_s"] for run in runs]
    return sum(values) / len(values)


def eval_config(ckpt: Path, *overrides: str):
    """The evaluate config as the command line would compose it (choices and overrides recorded)."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("evaluate", overrides=[f"ckpt={ckpt}", *overrides], return_hydra_config=True)
    return record_choices(cfg)


class Evaluator:
    """One checkpoint loaded once; ``run(overrides)`` evaluates it with those sampler/scorer/task settings."""

    def __init__(self, ckpt: Path) -> None:
        torch.set_num_threads(int(THREADS))
        self.ckpt, self.loaded = ckpt, load(ckpt)

    def run(self, *overrides: str) -> dict[str, dict]:
        cfg = eval_config(self.ckpt, *overrides)
        scorer = choose_scorer(self.loaded, cfg.scoring, explicit=False)
        samplers = SamplerForLength(cfg, self.loaded.tokenizer)
        model = EvalModel(self.loaded.net, self.loaded.tokenizer, self.loaded.decoding, None, scorer,
                          wants_bos(cfg, self.loaded), samplers=samplers)
        torch.manual_seed(cfg.seed)
        results = {}
        with torch.no_grad():
            for task in build_tasks(cfg):
                results[task.name] = task.run(model)
        return results


def evaluate_grid(runs: list[Path], task_overrides: list[str], settings: dict[str, list[str]], task: str,
                  keys: tuple[str, ...], column: str = "setting") -> tuple[list[dict], dict[str, list[dict]]]:
    """Every setting on every seed's model (loaded once per seed): the points to record, and each
    setting's metrics in seed order."""
    points, results = [], {label: [] for label in settings}
    for seed, run in zip(SEEDS, runs, strict=True):
        evaluator = Evaluator(run)
        for label, overrides in settings.items():
            metrics = evaluator.run(*task_overrides, *overrides)[task]
            results[label].append(metrics)
            points.append({"seed": seed, column: label, **{key: metrics[key] for key in keys}})
            print(f"seed {seed} {label:24s} " + " ".join(f"{key} {metrics[key]:.3f}" for key in keys), flush=True)
    return points, results


def interval(values: list[float]) -> dict:
    mean, low, high = mean_interval(values)
    return {"mean": mean, "low": low, "high": high, "n": len(values), "values": values}


def effect(name: str, differences: list[float], expect: str) -> dict:
    """A paired effect over seeds with its t 95% interval; ``expect`` is ">0", "<0" or "=0"
    (no difference, e.g. "at equal accuracy")."""
    return {"name": name, "expect": expect, **interval(differences)}


def verdict(effects: list[dict]) -> str:
    """reproduced: every stated effect's interval excludes 0 in the stated direction (holds 0 for
    "=0"); not reproduced: one excludes 0 the other way (or at all, for "=0"); else inconclusive."""
    def agrees(e):  # 1 agrees, -1 contradicts, 0 undecided
        if e["n"] < 2 or e["low"] != e["low"]:
            return 0
        excludes = 1 if e["low"] > 0 else (-1 if e["high"] < 0 else 0)
        if e["expect"] == "=0":
            return 1 if excludes == 0 else -1
        return excludes * (1 if e["expect"] == ">0" else -1)

    sides = [agrees(e) for e in effects]
    if all(s == 1 for s in sides):
        return "reproduced"
    if any(s == -1 for s in sides):
        return "not reproduced"
    return "inconclusive"


def write_result(finding: str, result: dict) -> Path:
    out = ROOT / finding / "result.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"finding": finding, **result, "verdict": verdict(result["effects"])}
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("finding", "verdict")} | {
        e["name"]: f"{e['mean']:+.3f} [{e['low']:+.3f}, {e['high']:+.3f}] n={e['n']}" for e in result["effects"]
    }, indent=2))
    return out
