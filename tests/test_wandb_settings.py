"""W&B settings shared by every command: evaluation and the sweep driver's own run use
``logger.wandb`` as training does, ``mode=auto`` finds a key for a self-hosted server the way
wandb does, and ``logger.wandb.log_model`` uploads checkpoints as artifacts.

No W&B server is reachable here: runs are offline and read back from their ``.wandb`` files,
except where only the online/offline decision is checked (``wandb.init`` is replaced there).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from analysis.wandb_offline import read_offline_run, read_records
from lit_illada.config.checks import exit_on_bad_input
from lit_illada.config.paths import CONF_DIR
from lit_illada.config.wandb_settings import stable_run_id
from lit_illada.evaluate import evaluate
from lit_illada.sweep import main as sweep
from tests.runs import FAST, train

SELF_HOSTED = "http://wandb.example.org:8080"
KEY = "local-" + "0123456789abcdef" * 3  # the shape of a W&B Server key (prefix, then 40+ characters)
QUICK_EVAL = ["tasks=[mc_nextline]", "limit=1", "scoring.mc_num=2"]


def composed(*overrides: str, config_name: str = "evaluate", hydra_node: bool = True):
    """The config as the command line composes it (``hydra_node=False``: as ``exit_on_bad_input``
    gets it from ``hydra.main``, Hydra's own node already removed)."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name=config_name, overrides=list(overrides), return_hydra_config=hydra_node)


def wandb_records(folder: Path) -> list:
    (path,) = folder.glob("*.wandb")
    return list(read_records(path))


@pytest.fixture
def clean_wandb_env(tmp_path, monkeypatch):
    """A machine with no W&B key, settings file or mode set; wandb's process-wide settings
    (read once per process, as wandb.init reads them) are dropped before and after."""
    import wandb  # noqa: PLC0415

    for name in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_MODE", "WANDB_BASE_URL",
                 "WANDB_CONFIG_DIR", "NETRC"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    wandb.teardown()
    yield home
    wandb.teardown()


# -- evaluation and the sweep driver use logger.wandb --------------------------------------------


def test_evaluation_logs_under_the_logger_wandb_settings(trained_run, tmp_path):
    output = tmp_path / "results.json"
    settings = ["logger.wandb.project=my-project", "logger.wandb.entity=my-team", "logger.wandb.group=night",
                "logger.wandb.tags=[ablation]", "logger.wandb.mode=offline"]
    evaluate(composed(f"ckpt={trained_run}", *QUICK_EVAL, f"output={output}", "wandb=true",
                              *settings))

    (folder,) = (tmp_path / "wandb").glob("offline-run-*")
    run = read_offline_run(folder)
    assert (run.project, run.group, run.job_type) == ("my-project", "night", "eval")
    assert "ablation" in run.tags
    assert run.id == stable_run_id(str(output.resolve()))
    (meta,) = [r.run for r in wandb_records(folder) if r.WhichOneof("record_type") == "run"]
    assert meta.entity == "my-team"
    assert run.summary["mc_nextline/n"] == 1  # the results went there


@pytest.mark.slow
def test_sweep_run_goes_where_its_trials_log(trained_run, tmp_path):
    """The driver's own W&B run takes the trials' logger.wandb (the overrides after --)."""
    root = tmp_path / "sweeps"
    argv = ["sweep=denoising_steps", "preset=tiny", "n_trials=1", f"sweeps_root={root}", "poll_interval=0.2",
            "wandb=true", "--", f"ckpt={trained_run}", "logger.wandb.project=my-project",
            "logger.wandb.entity=my-team", "logger.wandb.tags=[ablation]", "logger.wandb.mode=offline"]
    assert sweep(argv) == 0

    (folder,) = (root / "denoising_steps" / "wandb").glob("offline-run-*")
    run = read_offline_run(folder)
    assert (run.project, run.group, run.job_type) == ("my-project", "denoising_steps", "sweep")
    assert "ablation" in run.tags
    (meta,) = [r.run for r in wandb_records(folder) if r.WhichOneof("record_type") == "run"]
    assert meta.entity == "my-team"


# -- mode=auto and a self-hosted server -----------------------------------------------------------


def write_netrc(home: Path, host: str) -> None:
    netrc = home / ".netrc"
    netrc.write_text(f"machine {host}\n  login user\n  password {KEY}\n")
    netrc.chmod(0o600)


def evaluate_with_auto_mode(trained_run, tmp_path, monkeypatch, *overrides: str) -> dict:
    """evaluate wandb=true under mode=auto; the wandb.init arguments it chose (the server
    cannot be reached from here, so wandb.init only records them)."""
    import wandb  # noqa: PLC0415

    calls = []

    class Run:
        summary: dict = {}

        def finish(self):
            pass

    monkeypatch.setattr(wandb, "init", lambda **kwargs: calls.append(kwargs) or Run())
    cfg = composed(f"ckpt={trained_run}", *QUICK_EVAL, f"output={tmp_path / 'results.json'}",
                           "wandb=true", *overrides)
    evaluate(cfg)
    (kwargs,) = calls
    return kwargs


@pytest.mark.parametrize("netrc_host, mode", [
    ("wandb.example.org:8080", "online"),  # `wandb login --host http://wandb.example.org:8080`
    ("api.wandb.ai", "offline"),  # a key for W&B's cloud is no key for the self-hosted server
])
def test_a_key_for_a_self_hosted_server_is_found_for_that_server(
    trained_run, tmp_path, monkeypatch, clean_wandb_env, netrc_host, mode
):
    write_netrc(clean_wandb_env, netrc_host)
    monkeypatch.setenv("WANDB_BASE_URL", SELF_HOSTED)
    assert evaluate_with_auto_mode(trained_run, tmp_path, monkeypatch)["mode"] == mode


def test_a_configured_base_url_is_the_server_wandb_uses_and_looks_up(
    trained_run, tmp_path, monkeypatch, clean_wandb_env
):
    write_netrc(clean_wandb_env, "wandb.example.org:8080")
    configured = f"logger.wandb.base_url={SELF_HOSTED}"
    kwargs = evaluate_with_auto_mode(trained_run, tmp_path, monkeypatch, configured)
    assert kwargs["mode"] == "online"
    assert kwargs["settings"].base_url == SELF_HOSTED


# -- checkpoints as artifacts ---------------------------------------------------------------------


def model_artifacts(run_dir: Path) -> list[tuple[str, list[str]]]:
    (folder,) = (run_dir / "wandb").glob("offline-run-*")
    return [
        (record.artifact.name, sorted(record.artifact.aliases))
        for record in wandb_records(folder)
        if record.WhichOneof("record_type") == "artifact" and record.artifact.type == "model"
    ]


@pytest.mark.slow
@pytest.mark.parametrize("log_model", [None, "last", "best", "all"])
def test_log_model_uploads_the_chosen_checkpoints(tmp_path, cache_dir, clean_wandb_env, log_model):
    chosen = [f"logger.wandb.log_model={log_model}"] if log_model else []
    train(tmp_path, cache_dir, "logger=wandb", "logger.wandb.mode=offline", *chosen, "trainer.max_steps=4",
          "trainer.val_check_interval=2", "num_samples=0", name="art")
    artifacts = model_artifacts(tmp_path / "art")
    aliases = [names for _, names in artifacts]
    if log_model is None:  # off by default
        assert aliases == []
    elif log_model == "all":  # each new best.ckpt as it is written (validations at steps 2, 4), then the last
        assert aliases[-1] == ["last", "latest"] and 2 <= len(aliases) <= 3
        assert all(names == ["best", "latest"] for names in aliases[:-1])
    else:  # once, when training ends
        assert aliases == [[log_model, "latest"]]
    assert {name for name, _ in artifacts} <= {f"model-{stable_run_id('art')}"}  # Lightning's naming


# -- bad settings fail before anything is written --------------------------------------------------


def test_bad_wandb_settings_fail_fast_with_the_key(trained_run, tmp_path, cache_dir, capsys):
    from lit_illada.train import run  # noqa: PLC0415

    cfg = composed(*FAST, f"runs_root={tmp_path}", "name=fresh", f"data.cache_dir={cache_dir}",
                           "logger=wandb", "logger.wandb.log_model=everything", config_name="train",
                           hydra_node=False)
    with pytest.raises(SystemExit) as stop:
        exit_on_bad_input(run, cfg)
    assert stop.value.code == 2
    assert "logger.wandb.log_model='everything': choose false, last" in capsys.readouterr().err
    assert not (tmp_path / "fresh").exists()

    output = tmp_path / "results.json"
    cfg = composed(f"ckpt={trained_run}", *QUICK_EVAL, f"output={output}", "wandb=true",
                           "logger.wandb.base_url=wandb.example.org", hydra_node=False)
    with pytest.raises(SystemExit) as stop:
        exit_on_bad_input(evaluate, cfg)
    assert stop.value.code == 2
    assert "logger.wandb.base_url='wandb.example.org': expected the server's URL" in capsys.readouterr().err
    assert not output.exists()

    cfg = composed(f"ckpt={trained_run}", *QUICK_EVAL, f"output={output}", "wandb=true",
                           "logger=none", hydra_node=False)
    with pytest.raises(SystemExit) as stop:
        exit_on_bad_input(evaluate, cfg)
    assert stop.value.code == 2
    assert "error: wandb=true: logger.wandb is null (logger=csv or logger=none)" in capsys.readouterr().err
    assert not output.exists()
