"""The memory/time plan: its byte counts against direct counts, its FLOPs against REFERENCE.md,
and the command line."""

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from torch.distributed.tensor import DTensor

from lit_illada.config.build import load_model_preset
from lit_illada.config.parallel import FSDPConfig
from lit_illada.config.paths import CONF_DIR
from lit_illada.core.model import ModelConfig, Transformer
from lit_illada.plan import report
from lit_illada.planning.memory import Precision, count_params, param_groups, training_memory
from lit_illada.planning.plan import flops_per_token
from lit_illada.training.distributed import materialize, parallelize
from tests.test_distributed import _free_port, _init_gloo, _mesh

ROOT = Path(__file__).resolve().parent.parent
# Odd sizes on purpose: FSDP's uneven shards (rank 0 holds the larger one) must be counted right.
SMALL = dict(vocab_size=263, n_layers=3, d_model=64, n_heads=4, n_kv_heads=1, ffn_hidden=176)


def _local_bytes(tensors) -> int:
    locals_ = (t.to_local() if isinstance(t, DTensor) else t for t in tensors)
    return sum(t.numel() * t.element_size() for t in locals_)


def _train_step(net: Transformer) -> torch.optim.Optimizer:
    optimizer = torch.optim.AdamW(net.parameters())
    ids = torch.randint(0, net.config.vocab_size, (2, 16), generator=torch.Generator().manual_seed(0))
    F.cross_entropy(net(ids).flatten(0, 1), ids.flatten()).backward()
    optimizer.step()
    return optimizer


def _measured(net: Transformer, optimizer: torch.optim.Optimizer) -> dict[str, int]:
    params = list(net.parameters())
    state = [t for s in optimizer.state.values() for t in s.values()]
    grads = (p.grad for p in params)
    return {"params": _local_bytes(params), "grads": _local_bytes(grads), "optimizer": _local_bytes(state)}


def test_weight_grad_and_optimizer_bytes_match_a_direct_count_on_one_device():
    torch.manual_seed(0)
    net = Transformer(ModelConfig(**SMALL))
    measured = _measured(net, _train_step(net))
    plan = training_memory(net.config, batch_size=2, seq_len=16)
    assert measured == {"params": plan.params, "grads": plan.grads, "optimizer": plan.optimizer}


def _sharded_counts_worker(rank: int, world: int, port: int, out: str) -> None:
    _init_gloo(rank, world, port)
    torch.manual_seed(0)
    with torch.device("meta"):
        net = Transformer(ModelConfig(**SMALL))
    parallelize(net, _mesh(world), FSDPConfig(param_dtype="float32"))
    materialize(net, torch.device("cpu"))
    measured = _measured(net, _train_step(net))
    if rank == 0:
        torch.save(measured, out)
    dist.destroy_process_group()


def test_sharded_bytes_match_rank_zeros_direct_count(tmp_path):
    mp.spawn(_sharded_counts_worker, args=(2, _free_port(), str(tmp_path / "counts.pt")), nprocs=2)
    measured = torch.load(tmp_path / "counts.pt")
    plan = training_memory(ModelConfig(**SMALL), batch_size=2, seq_len=16, world=2, sharded=True)
    assert measured == {"params": plan.params, "grads": plan.grads, "optimizer": plan.optimizer}


def _saved_for_backward(net: Transformer, batch: int, seq: int) -> int:
    """Bytes of the distinct non-parameter tensors autograd keeps for the backward pass."""
    weights = {p.untyped_storage().data_ptr() for p in net.parameters()}
    saved: dict[int, int] = {}

    def keep(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    ids = torch.randint(0, net.config.vocab_size, (batch, seq), generator=torch.Generator().manual_seed(0))
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        everywhere = torch.ones_like(ids, dtype=torch.bool)  # t near 1: every position is masked
        F.cross_entropy(net(ids, logits_at=everywhere).float(), ids[everywhere])
    for table in net._rope_cache:  # cos/sin: built once per model like weights, not per token
        saved.pop(table.untyped_storage().data_ptr(), None)
    return sum(saved.values())


WIDER = dict(SMALL, d_model=128, n_heads=2, n_kv_heads=2, vocab_size=2048)


@pytest.mark.parametrize(("dtype", "compute"), [(torch.float32, 4), (torch.bfloat16, 2)])
@pytest.mark.parametrize("config", [SMALL, WIDER])
def test_activation_bytes_match_what_autograd_saves(dtype, compute, config):
    torch.manual_seed(0)
    net = Transformer(ModelConfig(**config)).to(dtype)
    measured = _saved_for_backward(net, batch=2, seq=64)
    plan = training_memory(net.config, batch_size=2, seq_len=64, precision=Precision(compute=compute))
    assert plan.activations == pytest.approx(measured, rel=0.02)


def test_activation_checkpointing_keeps_only_block_inputs():
    config = load_model_preset("illada_8b")
    plain = training_memory(config, batch_size=1, seq_len=4096, world=8, sharded=True)
    every = training_memory(config, batch_size=1, seq_len=4096, world=8, sharded=True, checkpointed_blocks=32)
    half = training_memory(config, batch_size=1, seq_len=4096, world=8, sharded=True, checkpointed_blocks=16)
    assert every.activations < half.activations < plain.activations
    assert every.params == plain.params and every.transient > plain.transient  # one block is recomputed


def test_flops_per_token_reproduce_the_reference_mfu_table():
    # REFERENCE.md: a 1.40B iLLaDA-shaped model at seq 2048, 35.7k tokens/s = 32.5% of 989 TFLOP/s,
    # counting attention as 6·layers·heads·head_dim·seq. Model FLOPs count bidirectional attention
    # whole, 12·layers·heads·head_dim·seq (as torchtitan and nanoGPT do): 6·... more.
    config = load_model_preset("illada_1b")
    implied = 0.325 * 989e12 / 35.7e3
    rest_of_attention = 6 * config.n_layers * config.n_heads * config.head_dim * 2048
    assert flops_per_token(config, 2048) == pytest.approx(implied + rest_of_attention, rel=0.01)


def compose_plan(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="plan", overrides=list(overrides))


def test_illada_8b_fits_on_eight_80gb_gpus():
    cfg = compose_plan("model=illada_8b", "trainer.devices=8", "data.seq_len=4096", "data.batch_size=1")
    text, fits = report(cfg)
    assert fits, text
    assert "7,615,025,152 parameters" in text and "FSDP2 over 8 devices" in text
    assert "days" in text and "MFU" in text


def test_a_run_that_does_not_fit_gets_a_layout_that_does():
    text, fits = report(compose_plan("data.seq_len=8192", "data.batch_size=4"))
    assert not fits
    assert "does NOT fit" in text and "fits with parallel.activation_checkpointing=" in text


def test_plan_command_line():
    proc = subprocess.run(
        [sys.executable, "-m", "lit_illada.plan", "model=llada_8b", "trainer.devices=8",
         "trainer.num_nodes=2", "data.seq_len=4096", "data.batch_size=1", "gpu_memory_gb=80"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "8,015,581,184 parameters" in proc.stdout and "FSDP2 over 16 devices" in proc.stdout
    for line in ("params", "grads", "optimizer", "activations", "total"):
        assert f"  {line}" in proc.stdout


def test_train_refuses_an_fsdp_run_that_cannot_fit_with_the_plan_as_message(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "lit_illada.train", "model=illada_8b", "trainer=fsdp",
         "trainer.accelerator=cpu", "trainer.devices=2", f"runs_root={tmp_path}", "logger=none"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "FSDP2 over 2 devices" in proc.stderr and "does NOT fit" in proc.stderr
    assert not any(tmp_path.iterdir())


PRESETS = sorted(path.stem for path in (CONF_DIR / "model").glob("*.yaml"))


def _built_groups(net: Transformer) -> tuple[list, list[list]]:
    """(root shapes, each block's shapes) of a built model, in named_parameters order."""
    in_blocks = {id(p) for p in net.blocks.parameters()}
    root = [tuple(p.shape) for p in net.parameters() if id(p) not in in_blocks]
    return root, [[tuple(p.shape) for p in block.parameters()] for block in net.blocks]


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("preset", PRESETS)
def test_analytic_parameter_groups_match_every_preset_built_on_meta(preset, tied):
    """The plan counts from the config alone; every shipped preset (tied or not) has exactly the
    shapes of the model it builds, so the plan's numbers are those of the built model."""
    config = dataclasses.replace(load_model_preset(preset), tie_embeddings=tied)
    with torch.device("meta"):
        net = Transformer(config)
    groups = param_groups(config)
    root, blocks = _built_groups(net)
    assert list(groups.root) == root and len(blocks) == groups.n_layers
    assert all(list(groups.block) == block for block in blocks)
    assert count_params(config) == net.num_params()


@pytest.mark.parametrize("preset", ["micro", "tiny"])
def test_parameter_count_matches_a_model_built_on_the_cpu(preset):
    net = Transformer(load_model_preset(preset))
    assert count_params(net.config) == sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("mfu=0", "mfu=0: must be a number in (0, 1]"),
        ("gpu_memory_gb=-5", "gpu_memory_gb=-5: must be a number > 0"),
    ],
)
def test_plan_refuses_values_that_would_divide_by_zero_or_plan_nonsense(override, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        report(compose_plan(override))
