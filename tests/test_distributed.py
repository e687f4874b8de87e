"""FSDP2 on CPU with 2 gloo ranks: training, sharded checkpoints, export, meta-device sharding.

Training goes through the real command line, because Lightning starts the second rank by
re-running it. Runs that are compared use the autoregressive objective without truncation:
it draws no random masks, so equal weights and an equal global batch give equal losses
whatever the number of ranks (the diffusion objective draws its masks per rank).
"""

import os
import resource
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lit_illada.checkpoints.loader import load
from lit_illada.checkpoints.sharded import read_model_state
from lit_illada.checkpoints.files import sharded_checkpoint
from lit_illada.config.parallel import FSDPConfig
from lit_illada.training.distributed import load_into_sharded, local_param_bytes, materialize, parallelize
from lit_illada.planning.memory import count_params
from lit_illada.core.model import ModelConfig, Transformer
from tests.runs import FAST, train

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
FSDP = [
    "trainer=fsdp",
    "trainer.accelerator=cpu",
    "parallel.param_dtype=float32",
    "trainer.log_every_n_steps=1",
]
EXACT = [
    "objective=autoregressive",
    "objective.truncate_fraction=0",
    "num_samples=0",
    "+trainer.limit_train_batches=4",  # epochs of 4 steps: a resume at step 4 starts a new epoch
    "trainer.val_check_interval=4",
]
# The same global batch and validation rows (val_batches x batch_size) on 1 and on 2 ranks.
ONE_RANK = ["trainer.devices=1", "data.batch_size=8", "data.val_batches=2"]
TWO_RANKS = ["trainer.devices=2", "data.batch_size=4", "data.val_batches=4"]


def cli_train(tmp_path, cache_dir, name, *overrides, timeout=240):
    args = [*FAST, *FSDP, f"runs_root={tmp_path}", f"data.cache_dir={cache_dir}", f"name={name}", *overrides]
    proc = subprocess.run(
        [sys.executable, "-m", "lit_illada.train", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def losses(run_dir: Path) -> pd.Series:
    metrics = pd.read_csv(run_dir / "metrics.csv").dropna(subset=["train/loss"])
    return metrics.set_index("step")["train/loss"]


def val_nll(run_dir: Path) -> list[float]:
    return pd.read_csv(run_dir / "metrics.csv").dropna(subset=["val/nll"])["val/nll"].tolist()


@pytest.fixture(scope="module")
def runs(tmp_path_factory, cache_dir):
    """A base checkpoint, and a 2-rank FSDP run of 8 steps started from it."""
    root = tmp_path_factory.mktemp("fsdp")
    train(root, cache_dir, "trainer.max_steps=1", "trainer.val_check_interval=1", "num_samples=0",
          name="base")
    base = root / "base" / "checkpoints" / "last.ckpt"
    cli_train(root, cache_dir, "two", *EXACT, *TWO_RANKS, "trainer.max_steps=8", f"init_from={base}")
    return root, base


def test_two_ranks_match_one_rank_with_the_same_global_batch(runs, cache_dir):
    root, base = runs
    cli_train(root, cache_dir, "one", *EXACT, *ONE_RANK, "trainer.max_steps=8", f"init_from={base}")
    one, two = losses(root / "one"), losses(root / "two")
    assert len(two) == 8 and list(two.index) == list(one.index)
    assert two.to_numpy() == pytest.approx(one.to_numpy(), abs=1e-5)  # float32 reduction order only
    assert val_nll(root / "two") == pytest.approx(val_nll(root / "one"), abs=1e-5)
    assert two.iloc[-1] < two.iloc[0]  # and it learns


def test_sharded_checkpoint_resumes_like_an_uninterrupted_run(runs, cache_dir):
    root, base = runs
    cli_train(root, cache_dir, "resumed", *EXACT, *TWO_RANKS, "trainer.max_steps=4", f"init_from={base}")
    last = root / "resumed" / "checkpoints" / "last.ckpt"
    assert last.is_dir() and sharded_checkpoint(last) and len(list(last.glob("*.distcp"))) == 2
    cli_train(root, cache_dir, "resumed", *EXACT, *TWO_RANKS, "trainer.max_steps=8")  # same name: resumes
    resumed, uninterrupted = losses(root / "resumed"), losses(root / "two")
    assert list(resumed.index) == list(range(8))  # steps 0-3, then 4-7 after the resume
    assert resumed.to_numpy() == pytest.approx(uninterrupted.to_numpy(), abs=1e-6)
    assert val_nll(root / "resumed") == pytest.approx(val_nll(root / "two"), abs=1e-6)


def test_activation_checkpointing_changes_memory_not_the_numbers(runs, cache_dir):
    root, base = runs
    cli_train(root, cache_dir, "ac", *EXACT, *TWO_RANKS, "trainer.max_steps=8", f"init_from={base}",
              "parallel.activation_checkpointing=1")
    assert losses(root / "ac").to_numpy() == pytest.approx(losses(root / "two").to_numpy(), abs=1e-6)
    # Checkpoint keys carry no wrapper prefix: the checkpoint loads with or without checkpointing.
    keys = read_model_state(root / "ac" / "checkpoints" / "last.ckpt").keys()
    assert "blocks.0.attn.q_proj.weight" in keys and not any("wrapped" in key for key in keys)


def test_srun_style_launch_through_lightnings_slurm_environment(tmp_path, cache_dir):
    """Two tasks started the way srun starts them: every rank takes the same default run name
    (from the job id, which a requeued job keeps) and the ranks find each other through SLURM."""
    args = [*FAST, *FSDP, *TWO_RANKS, f"runs_root={tmp_path}", f"data.cache_dir={cache_dir}",
            "trainer.max_steps=2", "trainer.val_check_interval=2", "num_samples=0"]
    slurm = dict(SLURM_NTASKS="2", SLURM_NTASKS_PER_NODE="2", SLURM_NODEID="0", SLURM_JOB_ID="4242",
                 SLURM_JOB_NAME="train", SLURM_NODELIST="127.0.0.1", SLURM_JOB_NUM_NODES="1")
    tasks = [
        subprocess.Popen([sys.executable, "-m", "lit_illada.train", *args], cwd=ROOT, text=True,
                         env={**os.environ, **slurm, "SLURM_PROCID": str(rank), "SLURM_LOCALID": str(rank)},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for rank in range(2)
    ]
    outputs = [task.communicate(timeout=240) for task in tasks]
    assert [task.returncode for task in tasks] == [0, 0], outputs[0][1][-3000:]
    assert [p.name for p in tmp_path.iterdir()] == ["tiny-diffusion-slurm4242"]
    assert "summary:" in outputs[0][0] and "summary:" not in outputs[1][0]
    assert sharded_checkpoint(tmp_path / "tiny-diffusion-slurm4242" / "checkpoints" / "last.ckpt")


def test_diffusion_training_on_two_ranks_writes_one_run_record(tmp_path, cache_dir):
    proc = cli_train(
        tmp_path, cache_dir, "diff", *TWO_RANKS, "trainer.max_steps=6", "trainer.val_check_interval=3"
    )
    assert proc.stdout.count("summary:") == 1  # rank 0 reports, rank 1 only computes
    record = tmp_path / "diff"
    assert (record / "samples.jsonl").read_text().count("\n") == 2  # sampling ran on the sharded model
    assert len(val_nll(record)) == 2 and losses(record).index.max() == 5


def _leave(rank: int) -> None:
    """Both ranks meet before the group is torn down: a rank that destroyed it while the other
    still waited on a gloo collective aborted ("terminate called without an active exception",
    seen once in CI on a loaded machine)."""
    dist.barrier()
    dist.destroy_process_group()


def _logits_worker(
    rank: int, world: int, port: int, ckpt: str, config: dict, ids: torch.Tensor, out: str
) -> None:
    _init_gloo(rank, world, port)
    with torch.device("meta"):
        net = Transformer(ModelConfig(**config))
    parallelize(net, _mesh(world), FSDPConfig(param_dtype="float32"))
    materialize(net, torch.device("cpu"))
    load_into_sharded(net, ckpt)
    with torch.no_grad():
        logits = net.eval()(ids)
    if rank == 0:
        torch.save(logits, out)
    _leave(rank)


def test_consolidated_export_gives_the_sharded_models_logits(runs, tmp_path):
    root, _ = runs
    ckpt = root / "two" / "checkpoints" / "last.ckpt"
    proc = subprocess.run(
        [sys.executable, "-m", "lit_illada.convert", "consolidate", str(ckpt), str(tmp_path / "export")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    written = {p.name for p in (tmp_path / "export").iterdir()}
    assert written == {"model.safetensors", "config.json", "run_config.json"}
    loaded = load(tmp_path / "export")
    ids = torch.randint(0, 256, (2, 48), generator=torch.Generator().manual_seed(0))
    config = loaded.net.config.to_dict()
    args = (2, _free_port(), str(ckpt), config, ids, str(tmp_path / "sharded.pt"))
    mp.spawn(_logits_worker, args=args, nprocs=2)
    with torch.no_grad():
        plain = loaded.net(ids)
    assert torch.equal(plain, torch.load(tmp_path / "sharded.pt"))
    assert loaded.tokenizer.mask_id == 259 and loaded.net.lm_head.weight is loaded.net.wte.weight


# iLLaDA-8B widths (d 4096, GQA 32/8, FFN 14,336, vocabulary 155,136) with one block: 854M parameters.
WIDE = dict(vocab_size=155_136, n_layers=1, d_model=4096, n_heads=32, n_kv_heads=8, ffn_hidden=14_336)


def _resident_bytes() -> int:
    """This process's resident memory now (Linux /proc)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _sharding_worker(rank: int, world: int, port: int, out: str) -> None:
    _init_gloo(rank, world, port)
    # torch's own libraries (several GB of mapped CUDA kernels in the default build) count in
    # RSS: what matters is what building and sharding the model adds on top of them.
    baseline = _resident_bytes()
    with torch.device("meta"):
        net = Transformer(ModelConfig(**WIDE))
    parallelize(net, _mesh(world), FSDPConfig(param_dtype="float32"))
    materialize(net, torch.device("cpu"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    torch.save({"local": local_param_bytes(net), "peak_rss": peak, "baseline": baseline}, f"{out}.{rank}")
    _leave(rank)


def test_meta_init_and_sharding_never_allocate_the_whole_model(tmp_path):
    full = count_params(ModelConfig(**WIDE)) * 4  # float32 bytes: 3.4 GB
    mp.spawn(_sharding_worker, args=(2, _free_port(), str(tmp_path / "rank")), nprocs=2)
    for rank in range(2):
        stats = torch.load(f"{tmp_path / 'rank'}.{rank}")
        assert stats["local"] == pytest.approx(full / 2, rel=0.01)
        # The memory the process gained above its baseline after importing torch (its shards and
        # any transient buffers) stays below 3/4 of the model: the whole model was never
        # materialized here. Holds for the CPU and the default (CUDA) torch build alike.
        assert stats["peak_rss"] - stats["baseline"] < 0.75 * full


def test_the_module_builds_its_transformer_on_meta_when_sharded():
    from lit_illada.diffusion import AllPositions, DiffusionObjective, ElboWeighting, LinearSchedule
    from lit_illada.training.module import DiffusionLM

    objective = DiffusionObjective(LinearSchedule(), ElboWeighting(), AllPositions(), mask_id=259)
    module = DiffusionLM(ModelConfig(**WIDE), objective, torch.optim.AdamW, parallel=FSDPConfig())
    assert all(p.is_meta for p in module.net.parameters())
    assert module.net.num_params() == count_params(ModelConfig(**WIDE))


def test_multirun_with_several_processes_is_refused(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "lit_illada.train", "-m", *FSDP, "trainer.devices=2", "optimizer.lr=1e-3,3e-3",
         f"runs_root={tmp_path / 'runs'}", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode != 0
    message = "Hydra multirun (-m) cannot be combined with trainer.devices x trainer.num_nodes = 2"
    assert message in proc.stderr
    assert not (tmp_path / "runs").exists()  # refused before anything was written


def _init_gloo(rank: int, world: int, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)


def _mesh(world: int):
    from torch.distributed.device_mesh import init_device_mesh

    return init_device_mesh("cpu", (world,))


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
