"""Components are named by the group choices each run records (lit_illada/config/choices.py):
config.yaml, results.json, the W&B config and tags carry them, and analysis reads them."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from analysis import load_runs
from analysis.records import checkpoint_run_dir
from analysis.rows import RunData, flatten, run_row
from lit_illada.config.choices import attention_name, record_choices
from lit_illada.config.paths import CONF_DIR


def composed(config_name: str, *overrides: str, hydra_node: bool = True):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=list(overrides), return_hydra_config=hydra_node)
    return record_choices(cfg)


def test_the_choices_hydra_composed_are_recorded_and_its_own_node_dropped():
    cfg = composed("train", "experiment=illada_sft", "noise=cosine")
    assert "hydra" not in cfg
    choices = OmegaConf.to_container(cfg.choices)
    assert {
        "experiment": "illada_sft",
        "stage": "sft",
        "logger": "wandb",
        "optimizer": "adamw",
        "sampler": "confidence",
        "objective": "diffusion",
        "masking": "sft_full",  # the same class as masking=pretrain: only the choice tells them apart
        "weighting": "elbo",
        "noise": "cosine",
        "model": "tiny",
    }.items() <= choices.items()
    assert not [group for group in choices if group.startswith("hydra/")]
    evaluation = OmegaConf.to_container(composed("evaluate", "ckpt=x", "sampler=margin").choices)
    assert {"sampler": "margin", "scoring": "likelihood"}.items() <= evaluation.items()
    # Composed without Hydra's node (and outside hydra.main) there is nothing to record.
    assert "choices" not in composed("train", hydra_node=False)


def test_wandb_tags_and_analysis_columns_agree():
    import lit_illada.config.resolvers  # noqa: F401, PLC0415 - conf/trainer/cpu.yaml's resolver
    from lit_illada.config.wandb_settings import component_tags  # noqa: PLC0415

    overrides = ["noise=polynomial", "model.n_heads=4", "model.n_kv_heads=2", "experiment=llada_sft"]
    cfg = composed("train", *overrides)
    tags = component_tags(cfg)
    row = run_row(RunData("r", "local", config=OmegaConf.to_container(cfg, resolve=True)), None)
    assert {"noise=polynomial", "masking=sft_response", "experiment=llada_sft", "attention=gqa2"} <= set(tags)
    for tag in tags:
        group, _, option = tag.partition("=")
        if group != "backend":
            assert row[group] == option, tag
    assert "choices.noise" not in row  # the choices are the component columns, not flat config keys
    assert [attention_name({"n_heads": h, "n_kv_heads": k}) for h, k in ((4, 4), (4, 2), (4, 1))] == [
        "mha",
        "gqa2",
        "gqa1",
    ]


def test_evaluation_choices_replace_the_training_ones():
    config = {"choices": {"sampler": "confidence", "noise": "linear"}, "stage_name": "pretrain"}
    results = {"objective": "diffusion", "config": {"choices": {"sampler": "eb", "scoring": "confidence"}}}
    row = run_row(RunData("r", "local", config=config), results)
    components = (row["noise"], row["sampler"], row["scoring"], row["objective"])
    assert components == ("linear", "eb", "confidence", "diffusion")
    assert "eval.choices.sampler" not in row
    # An AR checkpoint decodes left to right and is scored by its exact likelihood, whatever was asked.
    ar = run_row(RunData("r", "local", config=config), {**results, "objective": "autoregressive"})
    assert (ar["sampler"], ar["scoring"]) == ("autoregressive", "autoregressive")
    # A record written before choices were recorded simply has no component columns.
    old = run_row(RunData("r", "local", config={"noise": {"_target_": "x.LinearSchedule"}, "seed": 1}), None)
    assert "noise" not in old and old["noise._target_"] == "x.LinearSchedule" and old["seed"] == 1


def test_flatten_and_checkpoint_owner():
    assert flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": {}}) == {"a.b": 1, "a.c.d": [1, 2], "e": {}}
    assert checkpoint_run_dir("runs/x/checkpoints/epoch-2.ckpt") == Path("runs/x")
    assert checkpoint_run_dir("runs/x") == Path("runs/x")
    assert checkpoint_run_dir("/w/imported/model.ckpt") == Path("/w/imported")


def test_analysis_imports_neither_torch_nor_lightning():
    code = (
        "import sys, analysis, analysis.sources, analysis.rows, analysis.figures, lit_illada.config.choices; "
        "assert not {'torch', 'lightning'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


@pytest.mark.slow
def test_a_new_conf_file_is_named_by_analysis_with_no_edit_elsewhere(tmp_path, cache_dir):
    """noise/my_schedule.yaml and sampler/my_sampler.yaml in the user's own conf folder (Hydra's
    search path): both reuse a class another conf file uses, with other parameters."""
    from lit_illada.evaluate import evaluate  # noqa: PLC0415 - imports torch
    from lit_illada.train import run  # noqa: PLC0415
    from tests.runs import FAST, compose_train  # noqa: PLC0415

    extra = tmp_path / "my_conf"
    (extra / "noise").mkdir(parents=True)
    (extra / "noise" / "my_schedule.yaml").write_text(
        "_target_: lit_illada.diffusion.PolynomialSchedule\nexponent: 3.0\neps: 1.0e-3\nstratified: true\n"
    )
    (extra / "sampler").mkdir()
    # A sampler of its own: the confidence sampler's file, extended (Hydra's defaults list).
    (extra / "sampler" / "my_sampler.yaml").write_text("defaults:\n  - confidence\n  - _self_\n\nsteps: 8\n")
    searchpath = f"hydra.searchpath=[file://{extra}]"

    runs = tmp_path / "runs"
    cfg = compose_train(
        *FAST, searchpath, "noise=my_schedule", "trainer.max_steps=2", "trainer.val_check_interval=2",
        "num_samples=0", f"runs_root={runs}", "name=mine", f"data.cache_dir={cache_dir}",
    )
    run(cfg)
    config = OmegaConf.load(runs / "mine" / "config.yaml")
    assert config.choices.noise == "my_schedule" and config.noise.exponent == 3.0
    assert (load_runs(runs).set_index("run").loc["mine", ["noise", "masking", "sampler"]] == [
        "my_schedule", "pretrain", "confidence"
    ]).all()

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        eval_cfg = compose(
            config_name="evaluate",
            overrides=[
                searchpath, f"ckpt={runs / 'mine'}", "sampler=my_sampler", "scoring=confidence",
                "tasks=[mc_nextline]", "limit=2", "sampler.gen_length=16", "sampler.block_length=8",
            ],
            return_hydra_config=True,
        )
    evaluate(eval_cfg)
    results = json.loads((runs / "mine" / "results.json").read_text())
    assert {"sampler": "my_sampler", "scoring": "confidence"}.items() <= results["config"]["choices"].items()
    row = load_runs(runs).set_index("run").loc["mine"]
    assert (row["noise"], row["sampler"], row["scoring"]) == ("my_schedule", "my_sampler", "confidence")
    assert row["eval.sampler.steps"] == 8 and row["model.d_model"] == 64  # eval config, training config
