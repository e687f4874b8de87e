"""Tiny training runs shared by the end-to-end tests (real Hydra composition, real data)."""

from hydra import compose, initialize_config_dir

from lit_illada.config.paths import CONF_DIR
from lit_illada.train import run

FAST = [
    "model.n_layers=2",
    "model.d_model=64",
    "model.n_heads=2",
    "model.n_kv_heads=2",
    "model.ffn_hidden=128",
    "data.seq_len=64",
    "data.batch_size=8",
    "data.val_batches=2",
    "trainer.precision=32-true",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "sampler.gen_length=16",
    "sampler.block_length=8",
    "sampler.steps=16",
    "sample_prompt_length=16",
    "num_samples=2",
    "logger=csv",
]


def compose_train(*overrides):
    """conf/train.yaml composed as the command line would; with Hydra's node, whose group
    choices train records (lit_illada/config/choices.py) and then drops."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides), return_hydra_config=True)


def train(tmp_path, cache_dir, *overrides, name="run"):
    cache_key = "data.source.cache_dir" if "stage=sft" in overrides else "data.cache_dir"
    where = [f"runs_root={tmp_path}", f"name={name}", f"{cache_key}={cache_dir}"]
    return run(compose_train(*FAST, *where, *overrides))


