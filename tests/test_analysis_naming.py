"""Component names in the analysis tables are the conf/ file names that chose the components."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from analysis.naming import component_columns, evaluation_columns, flatten, sampler_name
from analysis.records import checkpoint_run_dir
from lit_illada.config.paths import CONF_DIR  # no torch import

GROUPS = ("noise", "weighting", "masking", "objective", "sampler")


def conf(group: str, name: str) -> dict:
    return OmegaConf.to_container(OmegaConf.load(CONF_DIR / group / f"{name}.yaml"), resolve=False)


@pytest.mark.parametrize("group", GROUPS)
def test_every_conf_file_maps_back_to_its_name(group):
    for path in sorted((CONF_DIR / group).glob("*.yaml")):
        # masking: AllPositions is "pretrain" in pretraining and "sft_full" in SFT.
        stage = "sft" if path.stem.startswith("sft") else "pretrain"
        columns = component_columns({group: conf(group, path.stem), "stage_name": stage})
        assert columns[group] == path.stem, path


@pytest.mark.parametrize("name", [p.stem for p in sorted((CONF_DIR / "scoring").glob("*.yaml"))])
def test_scoring_conf_files_map_back_to_their_names(name):
    assert evaluation_columns({"config": {"scoring": conf("scoring", name)}})["scoring"] == name


def test_results_without_config_are_named_from_the_reprs():
    """results.json written before it recorded its config has only the sampler's and scorer's repr."""
    results = {
        "objective": "diffusion",
        "sampler": "ConfidenceSampler(gen_length=64, steps=64, score='margin', cache='none')",
        "scorer": "ConfidenceScorer(mask_id=259, cfg_scale=0.0, batch_size=32)",
    }
    assert evaluation_columns(results) == {
        "sampler": "margin",
        "scoring": "confidence",
        "objective": "diffusion",
    }
    # An AR checkpoint is scored by exact likelihood and decodes left to right, whatever was asked.
    ar = {
        "objective": "autoregressive",
        "scorer": "AutoregressiveScorer(mask_id=259)",
        "config": {"sampler": conf("sampler", "threshold"), "scoring": conf("scoring", "confidence")},
    }
    assert evaluation_columns(ar) == {
        "sampler": "autoregressive",
        "scoring": "autoregressive",
        "objective": "autoregressive",
    }


def test_attention_and_unknown_classes():
    gqa = component_columns(
        {"model": {"n_heads": 4, "n_kv_heads": 2}, "noise": {"_target_": "my.pkg.MySchedule"}}
    )
    assert gqa["attention"] == "gqa" and gqa["noise"] == "MySchedule"  # unknown classes keep their name
    assert component_columns({"model": {"n_heads": 4, "n_kv_heads": 4}})["attention"] == "mha"
    assert sampler_name({"_target_": "lit_illada.sampling.ConfidenceSampler"}) == "confidence"


def test_flatten_and_checkpoint_owner():
    assert flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": {}}) == {"a.b": 1, "a.c.d": [1, 2], "e": {}}
    assert checkpoint_run_dir("runs/x/checkpoints/epoch-2.ckpt") == Path("runs/x")
    assert checkpoint_run_dir("runs/x") == Path("runs/x")
    assert checkpoint_run_dir("/w/imported/model.ckpt") == Path("/w/imported")
