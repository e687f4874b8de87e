"""``model.compile=true`` under every trainer, and the peak FLOP/s that MFU divides by.

The CPU runs go through the real entry point (``lit_illada.train.run`` on the composed config,
or ``python -m lit_illada.train`` where Lightning must start a second rank) with inductor's CPU
backend. No GPU here: for trainer=gpu and trainer=ddp the tests check that the flag reaches the
same build path (the config composes, the module compiles its blocks once in configure_model);
the device part of those runs is not run here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from hydra import compose, initialize_config_dir
from torch._dynamo.utils import counters  # dynamo's own tally of the graphs it compiled
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import CheckpointWrapper

import lit_illada
from lit_illada.checkpoints.sharded import read_model_state
from lit_illada.config.build import build_model_config, build_tokenizer
from lit_illada.config.changes import config_changes
from lit_illada.config.parallel import FSDPConfig
from lit_illada.config.paths import CONF_DIR
from lit_illada.core.model import ModelConfig, Transformer
from lit_illada.planning import plan
from lit_illada.training import distributed
from lit_illada.training import module as module_file
from lit_illada.training.run import build_module
from tests.runs import FAST, train
from tests.test_bad_input import Case, run_entry
from tests.test_distributed import _free_port, _init_gloo, _mesh

ROOT = Path(__file__).resolve().parent.parent
SHORT = [
    "data.seq_len=32",
    "trainer.max_steps=4",
    "trainer.val_check_interval=2",
    "trainer.log_every_n_steps=1",
    "num_samples=1",
    "sampler/cache=prefix",  # samples use prefill and forward_window on the compiled net
]
# float32 on CPU: inductor fuses RMSNorm, RoPE and SwiGLU, which reorders float32 sums (about
# 1e-7 relative per op). Over 4 AdamW steps that moved the weights by ~5e-7 and no loss digit
# (measured); 1e-4 is 100x that, and 1000x below the ~0.3 a loss changes by in one step here.
LOSS_TOLERANCE = 1e-4


def compose_train(*overrides: str):
    """conf/train.yaml composed as the command line would (without Hydra's own node)."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


def train_losses(run_dir: Path) -> list[float]:
    return pd.read_csv(run_dir / "metrics.csv").dropna(subset=["train/loss"])["train/loss"].tolist()


def val_nll(run_dir: Path) -> list[float]:
    return pd.read_csv(run_dir / "metrics.csv").dropna(subset=["val/nll"])["val/nll"].tolist()


def checkpoint(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")


@pytest.fixture(scope="module")
def cpu_runs(tmp_path_factory, cache_dir):
    """The same 4-step trainer=cpu run eager and with model.compile=true (and the nets compiled).
    The eager one also has peak_tflops=, which changes what is logged only."""
    root = tmp_path_factory.mktemp("compile")
    train(root, cache_dir, *SHORT, "peak_tflops=0.001", name="eager")
    compiled_nets = []
    real = module_file.compile_blocks

    def recording_compile_blocks(net):
        compiled_nets.append(net)
        real(net)

    graphs = counters["stats"]["unique_graphs"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module_file, "compile_blocks", recording_compile_blocks)
        train(root, cache_dir, *SHORT, "model.compile=true", name="compiled")
    return root, compiled_nets, counters["stats"]["unique_graphs"] - graphs


@pytest.mark.slow
def test_compiled_cpu_run_trains_like_the_eager_one(cpu_runs):
    root, compiled_nets, new_graphs = cpu_runs
    assert len(compiled_nets) == 1  # once, though Lightning calls configure_model again to validate
    assert all(block._compiled_call_impl is not None for block in compiled_nets[0].blocks)
    assert new_graphs >= 1  # the blocks really ran through torch.compile
    eager, compiled = train_losses(root / "eager"), train_losses(root / "compiled")
    assert len(compiled) == 4
    assert compiled == pytest.approx(eager, abs=LOSS_TOLERANCE)
    assert val_nll(root / "compiled") == pytest.approx(val_nll(root / "eager"), abs=LOSS_TOLERANCE)
    assert (root / "compiled" / "samples.jsonl").read_text().count("\n") == 1  # sampling worked


@pytest.mark.slow
def test_compiled_checkpoint_has_the_eager_keys_and_loads_without_compile(cpu_runs):
    root, _, _ = cpu_runs
    eager, compiled = checkpoint(root / "eager"), checkpoint(root / "compiled")
    assert list(compiled["state_dict"]) == list(eager["state_dict"])  # no _orig_mod. prefix
    # model.compile is how the run ran, not the model: the saved ModelConfig has no such key.
    assert compiled["lit_illada"]["model_config"] == eager["lit_illada"]["model_config"]
    assert "compile" not in compiled["lit_illada"]["model_config"]
    assert compiled["lit_illada"]["run_config"]["model"]["compile"] is True  # the run record says it
    loaded = lit_illada.load(root / "compiled" / "checkpoints" / "last.ckpt")
    saved = {key.removeprefix("net."): value for key, value in compiled["state_dict"].items()}
    assert loaded.net.state_dict().keys() == saved.keys()
    assert all(torch.equal(loaded.net.state_dict()[key], value) for key, value in saved.items())
    ids = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(loaded.net(ids)).all()


@pytest.mark.slow
def test_peak_tflops_override_logs_mfu_on_any_device(cpu_runs):
    root, _, _ = cpu_runs  # the eager run had peak_tflops=0.001: MFU is logged even on a CPU
    metrics = pd.read_csv(root / "eager" / "metrics.csv").dropna(subset=["train/mfu_model"])
    assert len(metrics) == 4 and (metrics["train/mfu_model"] > 0).all()
    flops = plan.flops_per_token(build_model_config(compose_train(*FAST, *SHORT)), 32)
    # mfu = tokens/s x FLOPs per token / peak: the peak given is the one divided by.
    expected = metrics["train/tokens_per_s"] * flops / 1e9
    assert metrics["train/mfu_model"].tolist() == pytest.approx(expected.tolist(), rel=1e-3)
    assert "train/mfu_model" not in pd.read_csv(root / "compiled" / "metrics.csv")  # CPU, no peak


@pytest.mark.parametrize("trainer", ["cpu", "gpu", "ddp"])
def test_every_non_sharded_trainer_compiles_each_block_once_in_configure_model(trainer, monkeypatch):
    # Only the build path: trainer=gpu/ddp runs on a CUDA device, which is not run here.
    cfg = compose_train(f"trainer={trainer}", "model=micro", "model.compile=true")
    module = build_module(cfg, build_tokenizer(cfg))
    assert module.parallel is None and module.compile_net
    compiled = []
    real = torch.nn.Module.compile

    def counting_compile(self, *args, **kwargs):
        compiled.append(self)
        real(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "compile", counting_compile)
    module.configure_model()
    module.configure_model()  # Lightning calls it again for validate and test
    assert compiled == list(module.net.blocks)
    plain = Transformer(build_model_config(cfg))
    assert list(module.net.state_dict()) == list(plain.state_dict())


def test_without_the_flag_nothing_compiles(monkeypatch):
    cfg = compose_train("model=micro")
    assert cfg.model.compile is False
    module = build_module(cfg, build_tokenizer(cfg))
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, *a, **k: pytest.fail("compiled"))
    module.configure_model()


def test_generate_on_a_compiled_module_matches_eager_with_a_kv_cache():
    """Samples stay eager (force_eager): new shapes and per-layer KV hooks would recompile."""
    cfg = compose_train("model=micro", "sampler/cache=prefix", "sampler.gen_length=8",
                        "sampler.block_length=8", "sampler.steps=8")
    eager = build_module(cfg, build_tokenizer(cfg))
    cfg.model.compile = True
    compiled = build_module(cfg, build_tokenizer(cfg))
    compiled.net.load_state_dict(eager.net.state_dict())
    compiled.configure_model()
    prompt = torch.randint(0, 256, (1, 8), generator=torch.Generator().manual_seed(0))
    graphs = counters["stats"]["unique_graphs"]
    results = [m.generate(prompt, torch.Generator().manual_seed(1)) for m in (eager, compiled)]
    assert counters["stats"]["unique_graphs"] == graphs  # nothing compiled for sampling
    assert torch.equal(results[0].generated, results[1].generated)


def _order_worker(rank: int, world: int, port: int, out: str) -> None:
    """parallelize a meta model with activation checkpointing every 2nd block and compile, and
    record, at each block's fully_shard, what had been done to that block."""
    _init_gloo(rank, world, port)
    seen = []
    real = distributed.fully_shard

    def recording_fully_shard(module, **kwargs):
        inner = module._checkpoint_wrapped_module if isinstance(module, CheckpointWrapper) else None
        seen.append({
            "root": isinstance(module, Transformer),
            "checkpointed": inner is not None,
            "compiled": module._compiled_call_impl is not None,
            "inner_compiled": inner is not None and inner._compiled_call_impl is not None,
        })
        return real(module, **kwargs)

    distributed.fully_shard = recording_fully_shard
    with torch.device("meta"):
        net = Transformer(ModelConfig(n_layers=3, d_model=64, n_heads=2, ffn_hidden=128))
    keys = list(net.state_dict())
    distributed.parallelize(net, _mesh(world), FSDPConfig(param_dtype="float32", activation_checkpointing=2),
                            compile=True)
    torch.save({"seen": seen, "keys": keys, "after": list(net.state_dict())}, out)
    dist.destroy_process_group()


def test_parallelize_checkpoints_then_compiles_then_shards(tmp_path):
    out = tmp_path / "order.pt"
    mp.spawn(_order_worker, args=(1, _free_port(), str(out)), nprocs=1)
    record = torch.load(out)
    blocks, root = record["seen"][:-1], record["seen"][-1]
    # Blocks 0 and 2 are checkpointed; what compiled is the wrapper (checkpoint, then compile),
    # and every block was compiled before fully_shard saw it (compile, then shard).
    assert [b["checkpointed"] for b in blocks] == [True, False, True]
    assert all(b["compiled"] for b in blocks) and not any(b["inner_compiled"] for b in blocks)
    assert root == {"root": True, "checkpointed": False, "compiled": False, "inner_compiled": False}
    assert record["after"] == record["keys"]  # checkpoint keys as without checkpointing or compile


@pytest.mark.slow
def test_fsdp_with_compile_on_two_cpu_ranks_trains_like_without(tmp_path, cache_dir):
    fsdp = [*FAST, *SHORT, "trainer=fsdp", "trainer.accelerator=cpu", "trainer.devices=2",
            "parallel.param_dtype=float32", "parallel.activation_checkpointing=1", "data.batch_size=4",
            f"runs_root={tmp_path}", f"data.cache_dir={cache_dir}"]
    procs = {}
    for name, extra in (("eager", []), ("compiled", ["model.compile=true"])):
        procs[name] = subprocess.run(
            [sys.executable, "-m", "lit_illada.train", *fsdp, f"name={name}", *extra],
            cwd=ROOT, capture_output=True, text=True, timeout=600,
            env={**os.environ, "TORCH_LOGS": "dynamo"},  # lists the frames dynamo traced, at exit
        )
        assert procs[name].returncode == 0, procs[name].stderr[-3000:]
    traced = "]   * forward /"  # a frame in dynamo's list of traced frames: the (checkpointed) blocks
    assert traced in procs["compiled"].stderr and traced not in procs["eager"].stderr
    assert train_losses(tmp_path / "compiled") == pytest.approx(train_losses(tmp_path / "eager"),
                                                                abs=LOSS_TOLERANCE)
    assert val_nll(tmp_path / "compiled") == pytest.approx(val_nll(tmp_path / "eager"), abs=LOSS_TOLERANCE)
    keys = [read_model_state(tmp_path / name / "checkpoints" / "last.ckpt").keys() for name in procs]
    assert keys[0] == keys[1]


# ---------------------------------------------------------------- configuration


def test_old_runs_resume_although_their_config_lacks_the_new_keys():
    """A run recorded before model.compile and peak_tflops existed (and with parallel.compile)
    is not refused as changed: these keys say how the process runs, not what it trains."""
    old = {"model": {"name": "tiny"}, "parallel": {"param_dtype": "bfloat16", "compile": False}}
    new = {"model": {"name": "tiny", "compile": True}, "parallel": {"param_dtype": "bfloat16"},
           "peak_tflops": 989}
    assert config_changes(old, new) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["peak_tflops=0"], "peak_tflops=0: expected a positive number of TFLOP/s"),
        (["peak_tflops=-5"], "peak_tflops=-5: expected a positive number of TFLOP/s"),
        (["model.compile=yes"], "model.compile='yes': expected true or false"),
        (["trainer=fsdp", "parallel.compile=true"],
         "parallel.compile: renamed to model.compile (the same for every trainer); write model.compile=true"),
    ],
)
def test_bad_values_are_refused_in_one_line(args, message, tmp_path, capsys):
    case = Case("bad", "train", args, [message])
    code, err = run_entry(case, [*args, f"runs_root={tmp_path}"], tmp_path, capsys)
    assert code == 2 and message in err and err.strip().count("\n") == 0
    assert not list(tmp_path.iterdir())  # refused before the run folder


# ----------------------------------------------------------------- peak FLOP/s

# Dense bf16 per GPU (NVIDIA datasheets, the sparsity figures halved).
GPUS = [
    ("NVIDIA H100 80GB HBM3", 989e12),  # SXM
    ("NVIDIA H100 PCIe", 756e12),
    ("NVIDIA H100 NVL", 835e12),
    ("NVIDIA H200", 989e12),  # SXM
    ("NVIDIA H200 NVL", 835e12),
    ("NVIDIA A100-SXM4-80GB", 312e12),
    ("NVIDIA A100 80GB PCIe", 312e12),
    ("NVIDIA L4", 121e12),  # from Lightning's table
    ("NVIDIA A100-SXM4-40GB MIG 1g.5gb", None),  # a slice: a share of the chip's peak
    ("Some Future GPU", None),  # unknown: no MFU unless peak_tflops= gives it
]


@pytest.mark.parametrize(("name", "expected"), GPUS)
def test_peak_flops_comes_from_the_cuda_device_name(name, expected, monkeypatch):
    # No CUDA device here: the device and its name are mocked.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning warns about a GPU it does not know
        assert plan.peak_flops("gpu") == expected
    assert plan.peak_flops("cpu") is None


def test_peak_flops_is_none_without_a_cuda_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert plan.peak_flops("gpu") is None and plan.peak_flops("auto") is None
