"""The sweep driver: real Optuna on a SQLite file, real ``python -m lit_illada.train`` trials
(tiny), real Hydra composition over conf/. The slow tests run whole sweeps in seconds per trial."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import optuna
import pytest
import sqlalchemy.exc
import yaml
from optuna.trial import TrialState

from lit_illada.sweep import main
from lit_illada.sweeping.commands import read_metric_column
from lit_illada.sweeping.definition import format_value
from lit_illada.sweeping.driver import compose_options, plan_sweep
from lit_illada.sweeping.errors import SweepConfigError
from lit_illada.sweeping.objective import trial_env
from lit_illada.sweeping.study import open_storage, open_study
from lit_illada.sweeping.workers import count
from tests.runs import FAST

REPO = Path(__file__).resolve().parent.parent
# FAST (tests/runs.py) with a handful of steps, validating every 2 so trials report intermediate values.
TINY_TRIAL = [
    *FAST,
    "num_samples=0",
    "trainer.max_steps=4",
    "trainer.val_check_interval=2",
    "trainer.log_every_n_steps=2",
]
NLL = {"metric": "val/nll", "direction": "minimize"}
GRID = {"_target_": "optuna.samplers.GridSampler"}
RANDOM = {"_target_": "optuna.samplers.RandomSampler"}


def write_sweep(folder: Path, name: str, **fields) -> Path:
    spec = {
        "command": "train",
        "sampler": GRID,
        "objectives": [NLL],
        "space": {"optimizer.lr": {"type": "categorical", "choices": [0.003, 0.001]}},
        "fixed": TINY_TRIAL,
        **fields,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def sweep_argv(sweep: Path, root: Path, cache_dir: Path, *options: str) -> list[str]:
    return [
        f"sweep={sweep}",
        f"sweeps_root={root}",
        "poll_interval=0.2",
        "wandb=false",
        *options,
        "--",
        f"data.cache_dir={cache_dir}",
    ]


def load(root: Path, study: str) -> optuna.Study:
    return optuna.load_study(study_name=study, storage=f"sqlite:///{root / study / 'study.db'}")


def trials_so_far(root: Path, study: str) -> list[optuna.trial.FrozenTrial]:
    """The trials of a study that a driver in another process may not have created yet."""
    if not (root / study / "study.db").exists():
        return []
    try:
        return load(root, study).trials
    except KeyError:  # the database exists, the study not yet
        return []
    except sqlalchemy.exc.SQLAlchemyError:  # the driver is creating the database's tables right now
        return []


def wait_for(condition, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"not met within {timeout} s")


# -- whole sweeps ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_killed_sweep_resumes_without_losing_or_repeating_a_trial(tmp_path, cache_dir):
    # A 6-point grid; lr=-1 composes (a float) but train refuses it at start-up with exit code 2.
    lrs = [0.003, -1, 0.002, 0.004, 0.005, 0.001]
    sweep = write_sweep(
        tmp_path,
        "resume",
        space={"optimizer.lr": {"type": "categorical", "choices": lrs}},
        intermediate="val/nll",
    )
    argv = [
        sys.executable,
        "-m",
        "lit_illada.sweep",
        *sweep_argv(sweep, tmp_path, cache_dir, "heartbeat_interval=1"),
    ]

    def a_later_trial_running():
        """A trial that trains (not the crashing one), started after two others finished."""
        trials = trials_so_far(tmp_path, "resume")
        finished = sum(t.state.is_finished() for t in trials)
        running = [t for t in trials if t.state == TrialState.RUNNING and "pid" in t.user_attrs]
        return next((t for t in running if finished >= 2 and t.params["optimizer.lr"] != -1), None)

    with (tmp_path / "first.log").open("w") as log:
        first = subprocess.Popen(argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        victim = wait_for(a_later_trial_running, timeout=120)
        first.send_signal(signal.SIGKILL)
        first.wait()
    os.killpg(victim.user_attrs["pid"], signal.SIGKILL)  # what a scheduler does to the rest of the job

    counted_before_restart = victim.number + 1  # finished ones and the victim, still RUNNING
    second = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=150)
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"{counted_before_restart} of 6 trials already counted" in second.stdout

    trials = load(tmp_path, "resume").trials
    assert len(trials) == 6
    assert not [t.number for t in trials if not t.state.is_finished()]
    assert sorted(t.params["optimizer.lr"] for t in trials) == sorted(lrs)  # every grid point once
    crashed = next(t for t in trials if t.params["optimizer.lr"] == -1)
    assert crashed.state == TrialState.FAIL
    assert crashed.user_attrs["returncode"] == 2
    assert "optimizer.lr" in crashed.user_attrs["stderr_tail"]
    killed = trials[victim.number]
    assert killed.state == TrialState.FAIL and "returncode" not in killed.user_attrs
    completed = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(completed) == 4 and all(t.number not in (crashed.number, killed.number) for t in completed)
    assert all(sorted(t.intermediate_values) == [1, 3] for t in completed)  # val/nll polled from metrics.csv
    assert "best (* above; minimize val/nll)" in second.stdout
    assert (tmp_path / "resume" / "trials.csv").exists()


@pytest.mark.slow
def test_two_drivers_on_one_sqlite_study_share_the_grid(tmp_path, cache_dir):
    """The same command started twice (a SLURM array): every grid point runs once, none is lost."""
    lrs = [0.003, 0.002, 0.004, 0.001]
    sweep = write_sweep(tmp_path, "shared", space={"optimizer.lr": {"type": "categorical", "choices": lrs}})
    argv = [sys.executable, "-m", "lit_illada.sweep", *sweep_argv(sweep, tmp_path, cache_dir)]
    drivers = [subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for _ in range(2)]
    outputs = [driver.communicate(timeout=300)[0] for driver in drivers]
    assert [driver.returncode for driver in drivers] == [0, 0], outputs

    trials = load(tmp_path, "shared").trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert sorted(t.params["optimizer.lr"] for t in trials) == sorted(lrs)
    assert len({t.user_attrs["run_dir"] for t in trials}) == 4
    ran = [line for out in outputs for line in out.splitlines() if line.startswith("trial ")]
    assert len(ran) == 4  # each driver ran some; together each trial exactly once


@pytest.mark.slow
def test_sigterm_stops_the_sweep_and_kills_the_running_trial(tmp_path, cache_dir):
    # How a scheduler stops a job: the trial (in its own process group) must not run on.
    sweep = write_sweep(tmp_path, "term")
    argv = [sys.executable, "-m", "lit_illada.sweep", *sweep_argv(sweep, tmp_path, cache_dir)]

    def trial_started():
        return next((t for t in trials_so_far(tmp_path, "term") if "pid" in t.user_attrs), None)

    driver = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    trial = wait_for(trial_started, timeout=60)
    driver.send_signal(signal.SIGTERM)
    _, err = driver.communicate(timeout=60)
    assert driver.returncode == 130 and "The same command resumes" in err
    with pytest.raises(ProcessLookupError):
        os.killpg(trial.user_attrs["pid"], 0)
    (stopped,) = load(tmp_path, "term").trials
    assert stopped.state == TrialState.FAIL and stopped.user_attrs["error"].startswith("interrupted")


@pytest.mark.slow
def test_pruned_trial_is_killed_early(tmp_path, cache_dir, capsys):
    # Two trials queued in this order (Optuna's enqueue_trial, which the driver runs first): a
    # short one that learns, then a long one at lr=1e-7 whose val/nll stays put. The median
    # pruner stops the second at its first validation, and the driver kills it there.
    trial_fixed = [o for o in TINY_TRIAL if not o.startswith("trainer.max_steps=")]
    sweep = write_sweep(
        tmp_path,
        "prune",
        sampler=RANDOM,
        n_trials=2,
        space={
            "optimizer.lr": {"type": "categorical", "choices": [0.003, 1e-7]},
            "trainer.max_steps": {"type": "categorical", "choices": [4, 400]},
        },
        intermediate="val/nll",
        pruner={"_target_": "optuna.pruners.MedianPruner", "n_startup_trials": 1, "n_warmup_steps": 0},
        fixed=[*trial_fixed, "lr_schedule=constant"],
    )
    study = optuna.create_study(study_name="prune", storage=f"sqlite:///{tmp_path / 'prune.db'}")
    study.enqueue_trial({"optimizer.lr": 0.003, "trainer.max_steps": 4})
    study.enqueue_trial({"optimizer.lr": 1e-7, "trainer.max_steps": 400})
    storage = f"storage=sqlite:///{tmp_path / 'prune.db'}"
    assert main(sweep_argv(sweep, tmp_path, cache_dir, storage)) == 0

    learned, stuck = optuna.load_study(study_name="prune", storage=storage.removeprefix("storage=")).trials
    assert learned.state == TrialState.COMPLETE and sorted(learned.intermediate_values) == [1, 3]
    assert stuck.state == TrialState.PRUNED and stuck.user_attrs["pruned_at_step"] < 20
    assert not (Path(stuck.user_attrs["run_dir"]) / "summary.json").exists()  # killed, not finished
    assert "pruned at step" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning", "ignore:Heartbeat of storage")
def test_stale_trial_is_retried_with_its_params(tmp_path, cache_dir):
    # A RUNNING trial whose driver is gone: its last heartbeat is older than the grace period.
    url = f"sqlite:///{tmp_path / 'retry.db'}"
    storage = optuna.storages.RDBStorage(url, heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(study_name="retry", storage=storage)
    study.enqueue_trial({"optimizer.lr": -1})  # the retry then crashes at start-up: a quick trial
    orphan = study.ask()
    orphan.suggest_categorical("optimizer.lr", [-1, 0.003])
    storage.record_heartbeat(orphan._trial_id)
    time.sleep(1.5)

    sweep = write_sweep(
        tmp_path,
        "retry",
        sampler=RANDOM,
        n_trials=1,
        space={"optimizer.lr": {"type": "categorical", "choices": [-1, 0.003]}},
    )
    options = [f"storage={url}", "heartbeat_interval=1", "grace_period=1", "retry_failed=1"]
    assert main(sweep_argv(sweep, tmp_path, cache_dir, *options)) == 1  # no trial completed

    stale, retry = optuna.load_study(study_name="retry", storage=url).trials
    assert stale.state == TrialState.FAIL and "returncode" not in stale.user_attrs
    assert retry.params == stale.params and retry.system_attrs["failed_trial"] == stale.number
    assert retry.state == TrialState.FAIL and retry.user_attrs["returncode"] == 2


@pytest.mark.slow
def test_multi_objective_sweep_on_a_journal_gives_a_pareto_front(tmp_path, cache_dir, capsys):
    sweep = write_sweep(
        tmp_path,
        "pareto",
        sampler={"type": "random", "seed": 0},  # the shorthand for optuna.samplers.RandomSampler
        n_trials=2,
        objectives=[NLL, {"metric": "train/tokens_per_s", "direction": "maximize"}],
        space={"optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}},
    )
    journal = tmp_path / "journal.log"
    assert main(sweep_argv(sweep, tmp_path, cache_dir, "workers=2", f"storage=journal://{journal}")) == 0

    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    study = optuna.load_study(study_name="pareto", storage=storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    assert study.metric_names == ["val/nll", "train/tokens_per_s"]  # what optuna-dashboard shows
    front = study.best_trials
    assert front and all(len(t.values) == 2 for t in front)
    out = capsys.readouterr().out
    assert "Pareto front (* above; minimize val/nll, maximize train/tokens_per_s)" in out
    for trial in front:
        assert f"  trial {trial.number}: val/nll=" in out

    # analysis reads the journal the driver wrote, trials joined with their run records.
    from analysis import load_runs  # noqa: PLC0415

    table = load_runs(f"optuna:journal://{journal}#pareto")
    assert sorted(table["trial"]) == [0, 1]
    assert sorted(table["val/nll"]) == sorted(t.values[0] for t in study.trials)


# -- mistakes caught before any trial runs -----------------------------------------------------------


def test_unopenable_storage_is_named(tmp_path, cache_dir, capsys):
    sweep = write_sweep(tmp_path, "bad_storage")
    for url in (
        f"sqlite:///{tmp_path}/no/such/folder/study.db",
        "nosuchdb://x",
        f"journal://{tmp_path}/no/such/j.log",
    ):
        assert main(sweep_argv(sweep, tmp_path, cache_dir, f"storage={url}")) == 2
        err = capsys.readouterr().err
        assert f"storage={url}: cannot open it" in err


def test_unknown_key_in_space_fails_before_any_trial(tmp_path, cache_dir, capsys):
    sweep = write_sweep(
        tmp_path, "typo", space={"optimizer.learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2}}
    )
    assert main(sweep_argv(sweep, tmp_path, cache_dir)) == 2
    err = capsys.readouterr().err
    assert "space.optimizer.learning_rate" in err and "does not compose with conf/train.yaml" in err
    assert not (tmp_path / "typo").exists()  # no study, no trial


def test_unknown_group_option_in_space_is_named(tmp_path, cache_dir, capsys):
    sweep = write_sweep(
        tmp_path, "group", space={"noise": {"type": "categorical", "choices": ["linear", "wiggly"]}}
    )
    assert main(sweep_argv(sweep, tmp_path, cache_dir)) == 2
    err = capsys.readouterr().err
    assert "space.noise: the value 'wiggly'" in err and "cosine" in err  # Hydra lists the valid options


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"space": {"optimizer.lr": {"type": "flot", "low": 1, "high": 2}}}, "space.optimizer.lr: type='flot'"),
        ({"objectives": [{"metric": "val/nll", "direction": "down"}]}, "objectives[0].direction: 'down'"),
        (
            {"space": {"optimizer.lr": {"type": "float", "low": 0, "high": 1, "log": True}}},
            "log=true needs low > 0",
        ),
        ({"pruner": {"type": "median"}, "objectives": [NLL, NLL]}, "cannot prune multi-objective"),
        (
            {"pruner": {"_target_": "optuna.pruners.HyperbandPruner"}, "objectives": [NLL, NLL]},
            "cannot prune multi-objective",
        ),
        ({"n_trials": 3}, "n_trials=3 exceeds the 2 points of the grid"),
        ({"sampler": {"type": "cmaes"}}, "sampler.type: 'cmaes': choose one of tpe, random, nsga2, grid"),
        ({"sampler": {"_target_": ""}}, "sampler: expected {_target_: optuna.samplers.TPESampler"),
        (
            {"sampler": {**GRID, "search_space": {"optimizer.lr": [1]}}},
            "sampler.search_space: the grid comes from the sweep's space",
        ),
        ({"fixed": [*TINY_TRIAL, "optimizer.lr=0.1"]}, "space.optimizer.lr: is also set in fixed"),
        ({"fixed": ["name=mine"]}, "name: is set by the sweep"),
        (
            {"space": {"x": {"type": "int", "low": 1, "high": 2, "when": {"y": 1}}}},
            "'y' is not a dimension listed before",
        ),
        ({"epochs": 3}, "epochs: unknown key"),
    ],
)
def test_bad_sweep_files_are_refused_with_the_key(tmp_path, cache_dir, fields, message):
    sweep = write_sweep(tmp_path, "bad", **fields)
    with pytest.raises(SweepConfigError) as err:
        plan_sweep(
            compose_options([f"sweep={sweep}", f"sweeps_root={tmp_path}"]), [f"data.cache_dir={cache_dir}"]
        )
    assert message in str(err.value)


def test_driver_options_and_trial_overrides_are_checked(tmp_path, capsys):
    sweep = write_sweep(tmp_path, "opts")
    assert main([f"sweep={sweep}", "wokers=2"]) == 2
    assert "unknown sweep option 'wokers'" in capsys.readouterr().err
    assert main([f"sweep={sweep}", "retry_failed=1", "heartbeat_interval=null"]) == 2
    assert "retry_failed needs heartbeat_interval" in capsys.readouterr().err
    assert main([f"sweep={sweep}", "--", "runs_root=/elsewhere"]) == 2
    assert "the sweep sets runs_root" in capsys.readouterr().err


def test_conditional_dimension_is_checked_and_suggested_only_where_it_applies(tmp_path):
    # sampler.threshold exists only in conf/sampler/threshold.yaml.
    threshold = {"type": "float", "low": 0.5, "high": 0.99}
    space = {
        "sampler": {"type": "categorical", "choices": ["confidence", "threshold"]},
        "sampler.threshold": {**threshold, "when": {"sampler": "threshold"}},
    }
    fixed = [o for o in TINY_TRIAL if not o.startswith("sampler.steps=")]  # threshold takes no steps
    sweep = write_sweep(tmp_path, "cond", sampler={"type": "tpe"}, n_trials=4, space=space, fixed=fixed)
    plan = plan_sweep(compose_options([f"sweep={sweep}"]), [])
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(8):
        trial = study.ask()
        chosen = plan.definition.space.suggest(trial)
        assert ("sampler.threshold" in chosen) == (chosen["sampler"] == "threshold")
        study.tell(trial, 0.0)

    space["sampler.threshold"] = threshold  # unconditional: composed with sampler=confidence
    sweep = write_sweep(tmp_path, "uncond", sampler={"type": "tpe"}, n_trials=4, space=space, fixed=fixed)
    with pytest.raises(SweepConfigError) as err:
        plan_sweep(compose_options([f"sweep={sweep}"]), [])
    assert "the value 'confidence' (with sampler.threshold=0.5) does not compose" in str(err.value)
    assert "sampler.threshold: no such key" in str(err.value)
    sweep = write_sweep(
        tmp_path,
        "grid",
        space={**space, "sampler.threshold": {**threshold, "when": {"sampler": "threshold"}}},
        fixed=fixed,
    )
    with pytest.raises(SweepConfigError, match="grid sampler needs an unconditional space"):
        plan_sweep(compose_options([f"sweep={sweep}"]), [])


# -- the shipped sweeps ------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", [None, "tiny"])
def test_objective_sweep_composes(preset):
    options = ["sweep=objective"] + ([f"preset={preset}"] if preset else [])
    plan = plan_sweep(compose_options(options), [])
    assert plan.n_trials == 16  # noise x weighting x n_kv_heads x seed
    assert plan.definition.space.keys == ["noise", "weighting", "model.n_kv_heads", "seed"]


def test_evaluate_sweep_needs_the_checkpoint_after_the_double_dash():
    with pytest.raises(SweepConfigError, match="give it after --, e.g. .* -- ckpt=runs/<name>"):
        plan_sweep(compose_options(["sweep=denoising_steps"]), [])


def zip_checkpoint(path: Path) -> Path:
    """A file that looks like a checkpoint to the driver (a zip archive, as torch.save writes); the
    trial's own loader would check the rest."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("data.pkl", b"")
    return path


@pytest.mark.parametrize("preset", [None, "tiny"])
def test_sft_epochs_sweep_composes_and_evaluates_every_epoch(preset, tmp_path):
    options = ["sweep=sft_epochs"] + ([f"preset={preset}"] if preset else [])
    plan = plan_sweep(compose_options(options), [f"init_from={zip_checkpoint(tmp_path / 'base.ckpt')}"])
    assert plan.n_trials == 6  # masking x lr
    assert isinstance(plan.sampler, optuna.samplers.GridSampler)
    assert isinstance(plan.pruner, optuna.pruners.MedianPruner)
    assert plan.command.every == "epoch"
    assert "data=sort" in plan.base_overrides and "tasks=[sort]" in plan.command.overrides
    assert plan.definition.objectives[0].metric == "sort/exact_match"
    assert ("limit=4" in plan.command.overrides) == (preset == "tiny")


@pytest.mark.parametrize("preset", [None, "tiny"])
def test_denoising_steps_sweep_composes_on_the_sort_task(preset, tmp_path):
    options = ["sweep=denoising_steps"] + ([f"preset={preset}"] if preset else [])
    plan = plan_sweep(compose_options(options), [f"ckpt={zip_checkpoint(tmp_path / 'model.ckpt')}"])
    assert [o.metric for o in plan.definition.objectives] == ["sort/exact_match", "sort/nfe"]
    assert isinstance(plan.sampler, optuna.samplers.NSGAIISampler)
    # Every block length divides the fixed gen_length, and every step count is a multiple of the blocks.
    (gen_length,) = (int(o.split("=")[1]) for o in plan.base_overrides if o.startswith("sampler.gen_length="))
    choices = {d.key: d.candidates() for d in plan.definition.space.dimensions}
    blocks, steps = choices["sampler.block_length"], choices["sampler.steps"]
    assert all(gen_length % b == 0 and all(s % (gen_length // b) == 0 for s in steps) for b in blocks)


def test_any_optuna_sampler_and_pruner_by_target(tmp_path, cache_dir):
    sweep = write_sweep(
        tmp_path, "targets", n_trials=4,
        sampler={"_target_": "optuna.samplers.GPSampler", "seed": 0, "n_startup_trials": 2},
        pruner={"_target_": "optuna.pruners.HyperbandPruner", "min_resource": 1, "reduction_factor": 2},
    )
    plan = plan_sweep(compose_options([f"sweep={sweep}"]), [f"data.cache_dir={cache_dir}"])
    assert isinstance(plan.sampler, optuna.samplers.GPSampler) and plan.sampler._n_startup_trials == 2
    assert isinstance(plan.pruner, optuna.pruners.HyperbandPruner)
    # Nested components are built too: a sampler that wraps another.
    sweep = write_sweep(
        tmp_path, "nested", n_trials=2,
        sampler={"_target_": "optuna.samplers.PartialFixedSampler", "fixed_params": {"optimizer.lr": 0.001},
                 "base_sampler": {"_target_": "optuna.samplers.TPESampler", "seed": 1}},
    )
    plan = plan_sweep(compose_options([f"sweep={sweep}"]), [])
    assert isinstance(plan.sampler._base_sampler, optuna.samplers.TPESampler)


def test_the_arguments_after_the_double_dash_belong_to_the_study(tmp_path, monkeypatch):
    """The identity check itself, on a real SQLite study: the same model spelled two ways resumes;
    another model is refused (through the command line: tests/test_bad_input_sweep.py)."""
    monkeypatch.chdir(tmp_path)
    model_a, model_b = zip_checkpoint(tmp_path / "a.ckpt"), zip_checkpoint(tmp_path / "b.ckpt")
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}", None, None, 0)

    def open_with(ckpt: str) -> optuna.Study:
        plan = plan_sweep(compose_options(["sweep=denoising_steps", "preset=tiny"]), [f"ckpt={ckpt}"])
        return open_study(storage, plan.definition, plan.study_name, plan.identity, plan.sampler, plan.pruner)

    first = open_with(str(model_a))
    assert first.user_attrs["sweep"]["overrides"] == [f"ckpt={model_a.resolve()}"]
    open_with("./a.ckpt")  # the same file, relative: resumes
    refused = r"was started with `-- ckpt=.*a.ckpt`, this command gives `-- ckpt=.*b.ckpt`"
    with pytest.raises(SweepConfigError, match=refused):
        open_with(str(model_b))


def test_evaluate_overrides_are_checked_against_the_evaluate_config(tmp_path):
    sweep = write_sweep(
        tmp_path, "bad_eval", command="train_then_evaluate",
        evaluate={"every": "epoch", "overrides": ["sampler=no_such_sampler"]},
    )
    with pytest.raises(SweepConfigError, match="evaluate.overrides does not compose with conf/evaluate.yaml"):
        plan_sweep(compose_options([f"sweep={sweep}"]), [])


@pytest.mark.slow
def test_denoising_steps_sweep_evaluates_each_trial_and_gives_a_pareto_front(tmp_path, trained_run, capsys):
    """The shipped sweep, tiny preset, on a real checkpoint: each trial is a real evaluate run."""
    argv = ["sweep=denoising_steps", "preset=tiny", "n_trials=3", f"sweeps_root={tmp_path}",
            "poll_interval=0.2", "wandb=false", "--", f"ckpt={trained_run}"]
    assert main(argv) == 0

    study = load(tmp_path, "denoising_steps")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3
    assert study.metric_names == ["sort/exact_match", "sort/nfe"]  # what optuna-dashboard shows
    # The sweep file's {_target_: optuna.samplers.NSGAIISampler, ...} drew every trial (its mark in storage).
    assert all(t.system_attrs.get("NSGAIISampler:generation") == 0 for t in study.trials)
    for trial in study.trials:
        results = json.loads((Path(trial.user_attrs["run_dir"]) / "results.json").read_text())
        task = results["tasks"]["sort"]
        assert trial.values == [task["exact_match"], task["nfe"]]
        assert results["config"]["sampler"]["block_length"] == trial.params["sampler.block_length"]
        if trial.params["sampler"] == "confidence":  # one forward per step
            assert task["nfe"] == trial.params["sampler.steps"]
    assert "Pareto front" in capsys.readouterr().out


@pytest.mark.slow
def test_sft_epochs_sweep_reports_every_epoch_and_keeps_the_best(tmp_path, trained_run):
    """train_then_evaluate: SFT on sort for 2 epochs from a base (the tiny preset's model), each
    epoch's checkpoint evaluated by a real evaluate run."""
    argv = ["sweep=sft_epochs", "preset=tiny", "n_trials=1", f"sweeps_root={tmp_path}", "poll_interval=0.2",
            "wandb=false", "--", f"init_from={trained_run}"]
    assert main(argv) == 0

    (trial,) = load(tmp_path, "sft_epochs").trials
    assert trial.state == TrialState.COMPLETE
    run_dir = Path(trial.user_attrs["run_dir"])
    epochs = sorted(p.name for p in (run_dir / "checkpoints").glob("epoch-*.ckpt"))
    assert epochs == ["epoch-1.ckpt", "epoch-2.ckpt"]
    scores = {
        epoch: json.loads((run_dir / "results" / f"epoch-{epoch}.json").read_text())["tasks"]["sort"]
        for epoch in (1, 2)
    }
    assert trial.intermediate_values == {e: scores[e]["exact_match"] for e in (1, 2)}
    assert trial.value == max(s["exact_match"] for s in scores.values())
    assert json.loads((run_dir / "results" / "epoch-2.json").read_text())["epoch"] == 2


# Stands in for `python -m lit_illada.train|evaluate` (launcher=[python, this file]): training
# leaves two epoch checkpoints and its `quality=` in the run dir; evaluating epoch k scores
# quality x k. The objective loop, the stages and the pruner are the real ones; only the
# seconds of real training are saved (the real commands run in the sft_epochs test above).
FAKE_ENTRY = """
import json, sys
from pathlib import Path
args = dict(a.split("=", 1) for a in sys.argv[3:])
if sys.argv[2] == "lit_illada.train":
    run = Path(args["runs_root"]) / args["name"]
    (run / "checkpoints").mkdir(parents=True)
    for name in ("epoch-1.ckpt", "epoch-2.ckpt", "last.ckpt"):
        (run / "checkpoints" / name).write_text("")
    (run / "quality").write_text(args["quality"])
else:
    ckpt, output = Path(args["ckpt"]), Path(args["output"])
    quality = float((ckpt.parent.parent / "quality").read_text())
    output.parent.mkdir(exist_ok=True)
    output.write_text(json.dumps({"tasks": {"t": {"score": quality * int(ckpt.stem[6:])}}}))
"""


def test_train_then_evaluate_prunes_a_trial_before_its_next_epoch_is_scored(tmp_path):
    import threading  # noqa: PLC0415

    from lit_illada.sweeping.commands import build_command  # noqa: PLC0415
    from lit_illada.sweeping.definition import load_definition  # noqa: PLC0415
    from lit_illada.sweeping.objective import TrialObjective, TrialSettings  # noqa: PLC0415

    fake = tmp_path / "fake_entry.py"
    fake.write_text(FAKE_ENTRY)
    sweep = write_sweep(
        tmp_path, "epochs", command="train_then_evaluate", fixed=[], sampler={"type": "random"},
        space={"quality": {"type": "categorical", "choices": [1.0, 0.1]}},
        objectives=[{"metric": "t/score", "direction": "maximize"}], intermediate="t/score",
        pruner={"type": "median", "n_startup_trials": 1, "n_warmup_steps": 0},
        evaluate={"every": "epoch", "overrides": []},
    )
    definition = load_definition(sweep)
    settings = TrialSettings(tmp_path / "out", [], [sys.executable, str(fake)], 0.05, None, None)
    objective = TrialObjective(definition, build_command(definition), settings, stop=threading.Event())
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(1, 0))
    study.enqueue_trial({"quality": 1.0})
    study.enqueue_trial({"quality": 0.1})
    study.optimize(lambda trial: objective(trial, 0, lambda: None), n_trials=2)

    good, poor = study.trials
    assert good.state == TrialState.COMPLETE and good.value == 2.0  # the best of its epochs
    assert good.intermediate_values == {1: 1.0, 2: 2.0}
    assert poor.state == TrialState.PRUNED and poor.intermediate_values == {1: 0.1}
    results = Path(poor.user_attrs["run_dir"]) / "results"
    assert sorted(p.name for p in results.iterdir()) == ["epoch-1.json"]  # epoch 2 never evaluated


# -- pieces ------------------------------------------------------------------------------------------


def test_workers_creating_one_new_sqlite_study_together_all_open_it(tmp_path):
    # A SLURM array starts every worker at once: all find no schema and all create it.
    code = (
        "from lit_illada.sweeping.study import open_storage; "
        f"open_storage('sqlite:///{tmp_path / 'fresh.db'}', 60, None, 0)"
    )
    workers = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(6)]
    failed = [w.stderr.read()[-500:] for w in workers if w.wait() != 0]
    assert not failed


def test_budget_counts_a_retried_trial_once():
    study = optuna.create_study()
    study.add_trial(optuna.create_trial(state=TrialState.COMPLETE, value=1.0))
    study.add_trial(optuna.create_trial(state=TrialState.FAIL))  # stale, then re-queued:
    study.add_trial(optuna.create_trial(state=TrialState.WAITING, system_attrs={"retry_history": [1]}))
    budget = count(study, n_trials=3)
    assert (budget.used, budget.waiting, budget.can_start) == (2, 1, True)
    assert count(study, n_trials=2).can_start  # the budget is used, but the WAITING retry still runs


def test_metrics_csv_skips_a_half_written_row(tmp_path):
    csv = tmp_path / "metrics.csv"
    csv.write_text("step,train/loss,val/nll\n0,5.5,\n1,,5.25\n3,,5.1")  # the last row has no newline yet
    assert read_metric_column(csv, "val/nll") == [(1, 5.25)]
    assert read_metric_column(tmp_path / "missing.csv", "val/nll") == []


def test_values_are_written_as_hydra_reads_them():
    assert [format_value(v) for v in (None, True, 3, 1e-5, "cosine", "[0.9,0.95]")] == [
        "null",
        "true",
        "3",
        "1e-05",
        "cosine",
        "[0.9,0.95]",
    ]


def test_each_worker_gets_its_own_gpus(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    assert trial_env(1, 2)["CUDA_VISIBLE_DEVICES"] == "6,7"
    assert trial_env(0, None)["CUDA_VISIBLE_DEVICES"] == "4,5,6,7"
    with pytest.raises(ValueError, match="lower workers"):
        trial_env(2, 2)
