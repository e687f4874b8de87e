"""Credentials in the environment never reach a file: not the run record, the checkpoints, the
W&B offline run and its debug logs, generations or evaluation results. And config values are
data: no interpolation runs a command, and one that would copy a secret into the config is
refused."""

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf.basecontainer import BaseContainer

from lit_illada.config.paths import CONF_DIR
from lit_illada.config.checks import exit_on_bad_input
from lit_illada.evaluate import evaluate
from lit_illada.generate import run as generate
from lit_illada.train import run as train
from tests.runs import FAST

FAKE_SECRETS = {
    "WANDB_API_KEY": "fake-0123456789abcdef0123456789abcdef01234567",
    "HF_TOKEN": "hf_fakeTOKEN0123456789abcdefABCDEF",
    "MY_SERVICE_PASSWORD": "pw-fake-9876543210",
}
# Every resolver an interpolation can call: OmegaConf's oc.*, Hydra's and lit_illada.config.resolvers.
# None runs a command or reads a file; a new one must be reviewed before it joins this list.
SAFE_RESOLVERS = {
    "oc.create", "oc.decode", "oc.deprecated", "oc.env", "oc.select", "oc.dict.keys", "oc.dict.values",
    "now", "hydra", "python_version", "best_cpu_precision",
}  # fmt: skip


@pytest.fixture
def secret_env(monkeypatch, tmp_path):
    for name, value in FAKE_SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WANDB_MODE", "offline")  # the fake key must never be sent anywhere
    # Whatever W&B (or anything else) keeps outside the run dir lands in tmp_path, and is read.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "home" / name.lower()))


def entry(function, config_name: str, overrides: list[str]):
    """The entry point as the command line runs it (after Hydra composed the config)."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides)
    return exit_on_bad_input(function, cfg)


def files_holding_a_secret(root: Path) -> list[str]:
    hits = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        hits += [f"{path}: {name}" for name, value in FAKE_SECRETS.items() if value.encode() in data]
    return hits


def test_no_file_holds_a_secret_from_the_environment(secret_env, tmp_path, cache_dir):
    runs = tmp_path / "runs"
    entry(train, "train", [
        *FAST, f"runs_root={runs}", "name=secret", f"data.cache_dir={cache_dir}", "logger=wandb",
        "logger.wandb.mode=offline", "trainer.max_steps=4", "trainer.val_check_interval=2",
    ])  # fmt: skip
    run_dir = runs / "secret"
    wandb_runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert wandb_runs and list(wandb_runs[0].rglob("debug*.log"))  # the W&B files exist, and are read below

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in ["import os", "def f(x):"]))
    quick = ["sampler.gen_length=8", "sampler.block_length=8", "sampler.steps=8"]
    entry(
        generate,
        "generate",
        [f"ckpt={run_dir}", f"prompts_file={prompts}", f"output={tmp_path / 'out.jsonl'}", *quick],
    )
    entry(evaluate, "evaluate", [
        f"ckpt={run_dir}", "limit=2", "scoring.mc_num=2", "tasks=[mc_nextline,docstring_to_body]", *quick,
        f"output={tmp_path / 'results.json'}",
    ])  # fmt: skip
    assert (tmp_path / "out.jsonl").exists() and (tmp_path / "results.json").exists()

    assert files_holding_a_secret(tmp_path) == []


@pytest.mark.parametrize(
    ("override", "name"),
    [
        ("+note=${oc.env:WANDB_API_KEY}", "WANDB_API_KEY"),
        ("logger.wandb.entity=team-${oc.env:HF_TOKEN}", "HF_TOKEN"),
        (f"+note={FAKE_SECRETS['MY_SERVICE_PASSWORD']}", "MY_SERVICE_PASSWORD"),  # pasted into the config
    ],
)
def test_a_secret_copied_into_the_config_is_refused(secret_env, tmp_path, capsys, override, name):
    with pytest.raises(SystemExit) as stop:
        entry(
            train, "train", [*FAST, "logger=wandb", f"runs_root={tmp_path / 'runs'}", "name=leak", override]
        )
    assert stop.value.code == 2
    err = capsys.readouterr().err
    key = override.lstrip("+").split("=", 1)[0]
    assert f"error: {key}: holds the value of ${name}" in err and "environment" in err
    assert FAKE_SECRETS[name] not in err  # the message names the variable, never its value
    assert not (tmp_path / "runs").exists()  # refused before the run record was created


def test_no_resolver_runs_a_command(tmp_path, capsys):
    assert set(BaseContainer._resolvers) <= SAFE_RESOLVERS
    with pytest.raises(SystemExit) as stop:
        entry(
            train,
            "train",
            [f"runs_root={tmp_path}", "name=shell", "+x=${shell:touch " + str(tmp_path / "pwned") + "}"],
        )
    assert stop.value.code == 2
    assert (
        "error: x: its interpolation cannot be resolved (Unsupported interpolation type shell)"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "shell").exists()
