"""Training throughput: the Lightning step against a bare PyTorch loop, same model and batch.

    python benchmarks/train_throughput.py [--model tiny] [--batch 32] [--seq 256] [--steps 20]

Both loops run in this process on identical weights, the same fixed batch, the same
objective, AdamW, gradient clipping and lr schedule; they alternate (bare, Lightning,
bare, Lightning, ...) so drift in machine load hits both. Prints one JSON object:
tokens/s for each, their ratio, and MFU when CUDA is present.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from contextlib import nullcontext
from functools import partial

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from lit_illada.config.build import load_model_preset as load_preset
from lit_illada.diffusion import AllPositions, DiffusionObjective, ElboWeighting, LinearSchedule
from lit_illada.training.lr_schedules import WarmupHoldCosine
from lit_illada.training.module import DiffusionLM
from lit_illada.planning.plan import flops_per_token, peak_flops
from lit_illada.config.resolvers import best_cpu_precision


class RepeatedBatch(Dataset):
    def __init__(self, ids: torch.Tensor, steps: int) -> None:
        self.ids, self.steps = ids, steps

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.ids}


def make_module(model_name: str, mask_id: int) -> DiffusionLM:
    objective = DiffusionObjective(LinearSchedule(stratified=True), ElboWeighting(), AllPositions(), mask_id=mask_id, truncate_fraction=0.0)
    optimizer = partial(torch.optim.AdamW, lr=1e-3, weight_decay=0.1, betas=(0.9, 0.95))
    return DiffusionLM(load_preset(model_name), objective, optimizer, WarmupHoldCosine(warmup_steps=5))


def bare_loop(module: DiffusionLM, ids: torch.Tensor, steps: int, warmup: int, precision: str, device: str) -> float:
    """The loop a careful person writes by hand. Returns tokens/s after warmup."""
    net, objective = module.net.to(device), module.objective
    decay = [p for p in net.parameters() if p.ndim >= 2]
    no_decay = [p for p in net.parameters() if p.ndim < 2]
    optimizer = module.optimizer_factory([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: module.lr_schedule(s, steps))
    autocast = torch.autocast(device, dtype=torch.bfloat16) if "bf16" in precision else nullcontext()
    batch = {"input_ids": ids.to(device)}
    for step in range(steps):
        if step == warmup:
            _sync(device)
            started = time.perf_counter()
        with autocast:
            loss = objective(net, batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
    _sync(device)
    return ids.numel() * (steps - warmup) / (time.perf_counter() - started)


class Stopwatch(L.Callback):
    def __init__(self, warmup: int) -> None:
        self.warmup, self.started, self.steps = warmup, 0.0, 0

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if batch_idx == self.warmup:
            _sync(module.device.type)
            self.started = time.perf_counter()

    def on_train_end(self, trainer, module) -> None:
        _sync(module.device.type)
        self.seconds = time.perf_counter() - self.started
        self.steps = trainer.global_step - self.warmup


def lightning_loop(module: DiffusionLM, ids: torch.Tensor, steps: int, warmup: int, precision: str, device: str) -> float:
    watch = Stopwatch(warmup)
    trainer = L.Trainer(
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=1,
        precision=precision,
        max_steps=steps,
        gradient_clip_val=1.0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[watch],
    )
    loader = DataLoader(RepeatedBatch(ids, steps), batch_size=None)
    trainer.fit(module, train_dataloaders=loader)
    return ids.numel() * watch.steps / watch.seconds


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precision", default=None, help="default: bf16-mixed on CUDA, else the CPU default")
    args = parser.parse_args()

    device = "cuda" if torch.cuda.is_available() else "cpu"
    precision = args.precision or ("bf16-mixed" if device == "cuda" else best_cpu_precision())
    torch.manual_seed(0)
    template = make_module(args.model, mask_id=259)
    ids = torch.randint(0, min(template.config.vocab_size, 256), (args.batch, args.seq))

    bare, lightning = [], []
    for _ in range(args.repeats):
        torch.manual_seed(1)
        bare.append(bare_loop(copy.deepcopy(template), ids, args.steps, args.warmup, precision, device))
        torch.manual_seed(1)
        lightning.append(lightning_loop(copy.deepcopy(template), ids, args.steps, args.warmup, precision, device))

    result = {
        "device": torch.cuda.get_device_name() if device == "cuda" else f"cpu x{torch.get_num_threads()} threads",
        "model": args.model,
        "params": template.net.num_params(),
        "batch": args.batch,
        "seq_len": args.seq,
        "precision": precision,
        "bare_tokens_per_s": round(statistics.median(bare), 1),
        "lightning_tokens_per_s": round(statistics.median(lightning), 1),
        "ratio_lightning_over_bare": round(statistics.median(lightning) / statistics.median(bare), 3),
        "runs": {"bare": [round(x, 1) for x in bare], "lightning": [round(x, 1) for x in lightning]},
    }
    peak = peak_flops("gpu" if device == "cuda" else "cpu")  # 989e12 on H100/H200
    if peak:
        flops = flops_per_token(template.config, args.seq)
        result["flops_per_token"] = flops
        result["peak_flops"] = peak
        result["bare_mfu"] = round(statistics.median(bare) * flops / peak, 4)
        result["lightning_mfu"] = round(statistics.median(lightning) * flops / peak, 4)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
