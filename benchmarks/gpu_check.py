"""The GPU path in one command: training MFU against a bare loop, sharded bf16 training and its
resume, the memory plan, attention backends, and sampler speed at the 8B shape and on a trained
model. At most 8 minutes on one H100/H200; every section also runs on CPU at tiny shapes.

    python benchmarks/gpu_check.py                   # on a GPU machine
    python benchmarks/gpu_check.py --smoke           # CPU, tiny shapes: every code path (the tests run it)
    python benchmarks/gpu_check.py --out r.json --peak-tflops 989

Sections (benchmarks/gpu_check_sections/): a. training throughput, b. sharded training, c. memory
plan, d. attention backends, e. sampler speed at the 8B shape, f. sampler speed on a trained model.
Each runs under its own time limit and catches its own failure (the traceback's last line is
reported and the next section runs). The JSON (default ``benchmarks/results/<gpu>-<date>.json``;
with ``--smoke`` a temporary file) is rewritten after every section and holds the versions, the
device, every number and every target, met or missed. Exit status: 0 when every section ran,
1 when one failed, 2 on bad input.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import platform
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import lightning
import torch
from gpu_check_sections.attention import attention_backends
from gpu_check_sections.common import ROOT, Section, Settings, run_section
from gpu_check_sections.sampler_8b import sampler_speed_8b
from gpu_check_sections.sharded import sharded_training
from gpu_check_sections.trained_sampler import trained_sampler_speed
from gpu_check_sections.training import memory_plan_check, training_throughput

from lit_illada.checkpoints.source_version import git_state
from lit_illada.planning.plan import peak_flops

# key, title, body, time limit in seconds on GPU, on the CPU smoke
SECTIONS = [
    ("a_training", "a. Training throughput: Lightning vs a bare loop", training_throughput, 170, 300),
    ("b_sharded", "b. Sharded training (FSDP2), DCP save and resume", sharded_training, 90, 300),
    ("c_memory", "c. Memory plan vs measured peak", memory_plan_check, 30, 120),
    ("d_attention", "d. Attention backends", attention_backends, 25, 120),
    ("e_sampler_8b", "e. Sampler speed at the iLLaDA-8B shape", sampler_speed_8b, 75, 120),
    ("f_trained_sampler", "f. Sampler speed on a trained sort model", trained_sampler_speed, 150, 300),
]
# The sections in all: with start-up, the issue's 8 minutes on a GPU; under the tests' 600 s guard.
TOTAL_SECONDS = {"gpu": 460, "smoke": 540}


def main() -> int:
    args = parse_args()
    if not args.smoke and not torch.cuda.is_available():
        print("gpu_check: no CUDA device is visible; run the CPU smoke check with --smoke", file=sys.stderr)
        return 2
    settings = make_settings(args)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # the table, not Lightning's banners
    out = Path(args.out) if args.out else default_output(settings)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "check": "benchmarks/gpu_check.py",
        "smoke": settings.smoke,
        "started": now(),
        "environment": environment(),
        "peak_flops": settings.peak_flops,
        "peak_flops_source": peak_source(args, settings),
        "workdir": str(settings.workdir),
        "sections": {},
    }
    if settings.smoke:
        report["note"] = "smoke: tiny shapes on CPU; every code path runs, no number is a measurement"
    print(f"gpu_check: {report['environment']['device']}, torch {torch.__version__}; JSON: {out}", flush=True)
    run_sections(settings, args.only, report, out)
    if not args.workdir:
        shutil.rmtree(settings.workdir, ignore_errors=True)
    print_totals(report, out)
    return 0 if all(s["status"] == "ok" for s in report["sections"].values()) else 1


def make_settings(args: argparse.Namespace) -> Settings:
    device = torch.device("cpu") if args.smoke else torch.device("cuda", 0)
    peak = args.peak_tflops * 1e12 if args.peak_tflops else None
    if peak is None and not args.smoke:
        peak = peak_flops("gpu")  # from the device name; None for a GPU no table knows
    if args.workdir:  # kept; a fresh folder inside, so that no run of an earlier check is resumed
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="gpu_check-", dir=args.workdir))
    gpus = 0 if args.smoke else torch.cuda.device_count()
    return Settings(smoke=args.smoke, device=device, peak_flops=peak, workdir=workdir, gpus=gpus)


def peak_source(args: argparse.Namespace, settings: Settings) -> str | None:
    if args.peak_tflops:
        return "--peak-tflops"
    if settings.smoke:
        return None
    name = torch.cuda.get_device_name(settings.device)
    return f"device name ({name})" if settings.peak_flops else f"unknown for {name}: give --peak-tflops"


def run_sections(settings: Settings, only: str | None, report: dict, out: Path) -> None:
    """Each section in turn under its own limit, within the check's total; the JSON is rewritten
    after every section, so a check stopped from outside keeps what it measured."""
    started, limit = time.perf_counter(), TOTAL_SECONDS["smoke" if settings.smoke else "gpu"]
    for key, title, body, gpu_s, smoke_s in SECTIONS:
        if only and key[0] not in only:
            continue
        left = limit - (time.perf_counter() - started)
        section = Section(key, title, budget_s=min(smoke_s if settings.smoke else gpu_s, left))
        section.result["title"] = title
        report["sections"][key] = section.result
        print(f"\n== {title} (limit {section.budget_s:.0f} s)", flush=True)
        if section.budget_s < 5:
            section.result.update(status="skipped", error="no time left of the check's total limit")
        else:
            run_section(section, body, settings)
        print_section(section.result)
        sections = report["sections"].items()
        report["targets"] = [{"section": k, **t} for k, s in sections for t in s.get("targets", [])]
        report["wall_seconds"] = round(time.perf_counter() - started, 1)
        write_json(out, report)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny shapes on CPU: every section's code path")
    parser.add_argument(
        "--out", help="JSON path (default benchmarks/results/<gpu>-<date>.json; smoke: a temp file)"
    )
    parser.add_argument(
        "--peak-tflops", type=float, help="dense bf16 peak of one device (default: from its name)"
    )
    parser.add_argument(
        "--workdir", help="keep the training runs in a new folder here (default: a temporary one, removed)"
    )
    parser.add_argument("--only", help="sections to run by letter, e.g. 'ae' (default: all)")
    args = parser.parse_args()
    if args.peak_tflops is not None and not args.peak_tflops > 0:
        parser.error(f"--peak-tflops={args.peak_tflops}: must be > 0, e.g. 989 for an H100/H200")
    if args.only and not set(args.only) <= {key[0] for key, *_ in SECTIONS}:
        parser.error(
            f"--only={args.only}: give section letters among {''.join(key[0] for key, *_ in SECTIONS)}"
        )
    return args


def default_output(settings: Settings) -> Path:
    date = datetime.date.today().isoformat()
    if settings.smoke:
        return Path(tempfile.gettempdir()) / f"gpu_check-smoke-{date}.json"
    name = torch.cuda.get_device_name(settings.device)
    count = f"{settings.gpus}x-" if settings.gpus > 1 else ""
    return (
        ROOT
        / "benchmarks"
        / "results"
        / f"{count}{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}-{date}.json"
    )


def environment() -> dict:
    cuda = torch.cuda.is_available()
    devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else []
    return {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "lightning": lightning.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": devices[0] if devices else f"cpu ({torch.get_num_threads()} threads)",
        "devices": devices,
        "device_memory_bytes": torch.cuda.get_device_properties(0).total_memory if cuda else None,
        "git": git_state(ROOT),
    }


def print_section(result: dict) -> None:
    print(f"-- {result['title']}: {result['status']} ({result.get('seconds', 0)} s)")
    if result.get("error"):
        print(f"   error: {result['error']}")
    for label, value in result.get("summary", {}).items():
        print(f"   {label:<52} {value}")
    for target in result.get("targets", []):
        value = "n/a" if target["value"] is None else f"{target['value']:.4g}"
        verdict = {True: "met", False: "MISSED", None: "not measured"}[target["met"]]
        print(f"   target: {target['name']:<44} {value:>10}  (goal {target['goal']}): {verdict}")
    sys.stdout.flush()


def print_totals(report: dict, out: Path) -> None:
    """The whole table once more at the end, where a log's tail keeps it."""
    print("\n== Summary")
    for result in report["sections"].values():
        print_section(result)
    statuses = {k: s["status"] for k, s in report["sections"].items()}
    met = [t["met"] for t in report.get("targets", [])]
    print(f"\n== {len(statuses)} sections: " + ", ".join(f"{k[0]} {v}" for k, v in statuses.items()))
    print(
        f"   targets: {met.count(True)} met, {met.count(False)} missed, {met.count(None)} not measured"
        + (" (smoke: not measurements)" if report["smoke"] else "")
    )
    print(f"   {report['wall_seconds']} s in all; JSON: {out}")


def write_json(out: Path, report: dict) -> None:
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=2, default=str) + "\n")
    tmp.replace(out)


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


if __name__ == "__main__":
    sys.exit(main())
