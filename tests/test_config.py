"""Every option of every config group composes with Hydra's compose API over the real conf/
tree, and instantiates into the object the training entry point would build."""

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import MissingConfigException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from lit_illada.config.build import build_model_config, build_objective, build_sampler, build_tokenizer
from lit_illada.config.paths import CONF_DIR
from lit_illada.training.run import build_module
from lit_illada.data import ByteTokenizer

GROUPS = sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir())
# A yaml whose name starts with _ is a shared base (conf/sampler/_base.yaml), not an option.
OPTIONS = [
    (group, p.stem)
    for group in GROUPS
    for p in sorted((CONF_DIR / group).glob("*.yaml"))
    if not p.stem.startswith("_")
]

# Options whose yaml has a mandatory (???) field need a value to instantiate; these are local files
# the test makes, never anything from a hub.
REQUIRED_VALUES = {
    ("tokenizer", "hf"): lambda tmp: [f"tokenizer.path={_tiny_hf_tokenizer(tmp)}"],
    ("data", "text"): lambda tmp: [f"data.corpus.paths={_text_file(tmp)}"],
    ("data", "hf"): lambda tmp: ["data.corpus.name=some/dataset"],
    ("data", "sft_jsonl"): lambda tmp: [f"data.source.path={_jsonl_file(tmp)}"],
}


def _text_file(tmp: Path) -> Path:
    path = tmp / "doc.txt"
    path.write_text("def f():\n    return 1\n")
    return path


def _jsonl_file(tmp: Path) -> Path:
    path = tmp / "sft.jsonl"
    path.write_text('{"prompt": "2+2=", "response": "4"}\n')
    return path


def _tiny_hf_tokenizer(tmp: Path) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["[UNK]", "<|endoftext|>", "[MASK]"])
    tokenizer.train_from_iterator(["def f(x):\n    return x + 1\n"] * 20, trainer)
    path = tmp / "tokenizer.json"
    tokenizer.save(str(path))
    return path


TRAIN_DEFAULTS = {
    next(iter(entry)).removeprefix("optional ") for entry in OmegaConf.load(CONF_DIR / "train.yaml").defaults
    if isinstance(entry, dict) or OmegaConf.is_dict(entry)
}


def compose_train(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def test_every_group_has_options():
    assert {"model", "noise", "weighting", "masking", "objective", "sampler", "data", "tokenizer", "optimizer",
            "lr_schedule", "trainer", "logger", "stage", "experiment"} <= set(GROUPS)


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_and_instantiates(group, option, tmp_path):
    # Groups that train.yaml does not list (e.g. scoring, used by evaluation) are appended.
    prefix = "" if group in TRAIN_DEFAULTS else "+"
    overrides = [f"{prefix}{group}={option}"] + REQUIRED_VALUES.get((group, option), lambda _: [])(tmp_path)
    cfg = compose_train(overrides)
    OmegaConf.resolve(cfg)  # every interpolation resolves
    tokenizer = build_tokenizer(cfg)
    if group in ("noise", "weighting", "masking", "objective"):
        objective = build_objective(cfg, tokenizer)
        assert objective.mask_id == tokenizer.mask_id
    elif group == "sampler":
        assert build_sampler(cfg, tokenizer).mask_id == tokenizer.mask_id
    elif group == "task":
        assert instantiate(cfg.task).limit >= 1
    elif group == "scoring":
        scorer = instantiate(cfg.scoring, mask_id=tokenizer.mask_id)
        assert scorer.mask_id == tokenizer.mask_id
    elif group == "model":
        config = build_model_config(cfg)  # model.compile (a run-only key) is left out
        assert config.name == option
    elif group == "data":
        instantiate(cfg.data, tokenizer=tokenizer)  # constructor only: no data is read
    elif group == "trainer":
        if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
            # The remaining keys must still be valid Trainer arguments.
            cfg.trainer.accelerator, cfg.trainer.precision = "cpu", "32-true"
        trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
        assert trainer.max_steps == cfg.trainer.max_steps
    elif group in ("optimizer", "lr_schedule", "stage", "experiment", "tokenizer", "logger"):
        cfg.model.vocab_size = max(cfg.model.vocab_size, tokenizer.vocab_size)
        module = build_module(cfg, tokenizer)  # the whole module, tiny model
        assert module.net.num_params() > 0


def test_stage_sft_switches_data_masking_and_normalization():
    cfg = compose_train(["stage=sft"])
    assert cfg.masking._target_.endswith("ResponseOnly")
    assert cfg.data._target_.endswith("SFTDataModule")
    assert cfg.objective.normalize._target_.endswith("PerAnswerLength")
    full = compose_train(["experiment=illada_sft"])
    assert full.masking._target_.endswith("AllPositions")
    assert full.objective.normalize._target_.endswith("PerToken")


def test_unknown_group_option_lists_the_valid_ones():
    with pytest.raises(MissingConfigException) as err:
        compose_train(["sampler=nonexistent"])
    assert "confidence" in str(err.value)


def test_headline_command_composes():
    cfg = compose_train(["model=illada_8b", "sampler=confidence"])
    assert cfg.model.n_kv_heads == 8
    assert build_sampler(cfg, ByteTokenizer()).gen_length > 0


def test_keys_added_since_a_run_was_recorded_count_as_changes_only_when_they_change_what_it_did():
    from lit_illada.config.changes import config_changes  # noqa: PLC0415

    old = {"optimizer": {"lr": 0.002}, "objective": {"truncate_fraction": 0.0}}
    same = {"optimizer": {"lr": 0.002, "fused": None}, "objective": {"truncate_fraction": 0.0, "trim_padding_fraction": 0.0}}
    assert config_changes(old, same) == []
    trimmed = {"optimizer": {"lr": 0.002, "fused": True}, "objective": {"truncate_fraction": 0.0, "trim_padding_fraction": 1.0}}
    assert [str(c) for c in config_changes(old, trimmed)] == ["optimizer.fused: null -> true",
                                                              "objective.trim_padding_fraction: 0.0 -> 1.0"]
