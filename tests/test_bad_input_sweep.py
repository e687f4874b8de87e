"""Bad input to the sweep driver, and to the data and tokenizer its trials train on: the second
matrix (issues 13 and 14), in the style of tests/test_bad_input.py, whose Case machinery it reuses.

Each case runs the real entry point (``lit_illada.sweep.main``; train after Hydra composition) and
expects exit code 2 with one line that names the key and the fix, refused before any trial runs
(so nothing counts toward ``n_trials``), and no file created or changed: not the existing run, not
an existing study.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
import yaml

from lit_illada.sweep import main as sweep
from tests.runs import FAST
from tests.test_bad_input import Case, make_inputs, no_process_launch, run_entry, snapshot  # noqa: F401 - a fixture

pytestmark = pytest.mark.slow

# A sweep file that plans (train, a 2-point grid): the cases change its sampler or pruner.
SWEEP_OK = {
    "command": "train",
    "sampler": {"_target_": "optuna.samplers.GridSampler"},
    "objectives": [{"metric": "val/nll", "direction": "minimize"}],
    "space": {"optimizer.lr": {"type": "categorical", "choices": [0.003, 0.001]}},
    "fixed": FAST,
}


@dataclass
class SweepCase(Case):
    sweep_file: dict | None = None  # written to {tmp}/<id>.yaml, passed as {sweep}
    before: list[str] | None = None  # a sweep run first: the existing study the mistake must not touch


CASES = [
    # -- the models after `--` (issue 14, item 6): checked before the first trial
    SweepCase(
        "sweep-ckpt-missing",
        "sweep",
        ["sweep=denoising_steps", "preset=tiny", "--", "ckpt={tmp}/no/such/run"],
        ["-- ckpt=", "no/such/run: no such file or run directory", "e.g. ckpt=runs/<name>"],
    ),
    SweepCase(
        "sweep-ckpt-not-a-checkpoint",
        "sweep",
        ["sweep=denoising_steps", "preset=tiny", "--", "ckpt={truncated}"],
        ["-- ckpt=", "truncated.ckpt: not a checkpoint", "cut short"],
        needs=["truncated"],
    ),
    SweepCase(
        "sweep-ckpt-folder-without-model",
        "sweep",
        ["sweep=denoising_steps", "preset=tiny", "--", "ckpt={empty}"],
        ["-- ckpt=", "a folder without a model", "checkpoints/best.ckpt"],
        needs=["empty"],
    ),
    SweepCase(
        "sweep-other-ckpt-into-existing-study",
        "sweep",
        ["sweep=denoising_steps", "preset=tiny", "--", "ckpt={run_b}"],
        ["study 'denoising_steps' was started with `-- ckpt=", "this command gives `-- ckpt=",
         "study=<new name>"],
        before=["sweep=denoising_steps", "preset=tiny", "n_trials=1", "--", "ckpt={run}"],
    ),
    # -- SFT needs a base (issue 14, item 7)
    SweepCase(
        "sweep-sft-without-init-from",
        "sweep",
        ["sweep=sft_epochs", "preset=tiny"],
        ["sft_epochs.yaml: init_from: required (the base model SFT starts from)",
         "give it after --, e.g. python -m lit_illada.sweep sweep=sft_epochs -- init_from="],
    ),
    SweepCase(
        "sweep-sft-init-from-missing",
        "sweep",
        ["sweep=sft_epochs", "preset=tiny", "--", "init_from={tmp}/no/base.ckpt"],
        ["-- init_from=", "no/base.ckpt: no such file or run directory"],
    ),
    # -- samplers and pruners by _target_ (issue 13)
    SweepCase(
        "sweep-sampler-target-unknown",
        "sweep",
        ["sweep={sweep}"],
        ["sampler._target_='optuna.samplers.NoSuchSampler': cannot import it",
         "e.g. optuna.samplers.TPESampler"],
        sweep_file={**SWEEP_OK, "sampler": {"_target_": "optuna.samplers.NoSuchSampler"}, "n_trials": 2},
    ),
    SweepCase(
        "sweep-sampler-target-not-a-sampler",
        "sweep",
        ["sweep={sweep}"],
        ["sampler._target_='optuna.pruners.MedianPruner' is not an Optuna sampler", "BaseSampler"],
        sweep_file={**SWEEP_OK, "sampler": {"_target_": "optuna.pruners.MedianPruner"}, "n_trials": 2},
    ),
    SweepCase(
        "sweep-sampler-bad-argument",
        "sweep",
        ["sweep={sweep}"],
        ["sampler: TPESampler.__init__() got an unexpected keyword argument 'n_startup'"],
        sweep_file={**SWEEP_OK, "sampler": {"_target_": "optuna.samplers.TPESampler", "n_startup": 3},
                    "n_trials": 2},
    ),
    SweepCase(
        "sweep-pruner-target-unknown",
        "sweep",
        ["sweep={sweep}"],
        ["pruner._target_='optuna.pruners.Hyperband': cannot import it", "e.g. optuna.pruners.MedianPruner"],
        sweep_file={**SWEEP_OK, "pruner": {"_target_": "optuna.pruners.Hyperband"}},
    ),
    # -- the data and tokenizer a trial trains on (issue 14, item 8 and the tokenizer.path item)
    SweepCase(
        "tokenizer-path-not-a-tokenizer",
        "train",
        ["tokenizer=hf", "tokenizer.path={not_a_tokenizer}"],
        ["tokenizer.path=", "settings.json is not a Hugging Face tokenizer.json", "point tokenizer.path at"],
        needs=["not_a_tokenizer"],
    ),
    SweepCase(
        "sft-data-with-the-mask-token",
        "train",
        ["stage=sft", "data=sft_jsonl", "data.source.path={sft_with_mask}", "tokenizer=hf",
         "tokenizer.path={tokenizer}", "model.vocab_size=304"],
        ["sft.jsonl:2: the prompt contains '[MASK]'", "mask token", "Remove or rewrite it"],
        needs=["tokenizer", "sft_with_mask"],
    ),
]


def more_inputs(tmp: Path, values: dict[str, str], case: SweepCase) -> dict[str, str]:
    if "not_a_tokenizer" in case.needs:  # JSON, but not a tokenizer
        (tmp / "settings.json").write_text(json.dumps({"model": "tiny", "lr": 0.001}))
        values["not_a_tokenizer"] = str(tmp / "settings.json")
    if "sft_with_mask" in case.needs:
        lines = [{"prompt": f"def f{i}(x):", "response": f"    return x + {i}"} for i in range(40)]
        lines[1]["prompt"] = "fill in [MASK] here:"  # line 2
        (tmp / "sft.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
        values["sft_with_mask"] = str(tmp / "sft.jsonl")
    if case.sweep_file is not None:
        (tmp / f"{case.id}.yaml").write_text(yaml.safe_dump(case.sweep_file, sort_keys=False))
        values["sweep"] = str(tmp / f"{case.id}.yaml")
    return values


def run_sweep(args: list[str], tmp: Path) -> int:
    """``python -m lit_illada.sweep <options> -- <overrides>``, with the test's sweep folder."""
    cut = args.index("--") if "--" in args else len(args)
    options = [*args[:cut], f"sweeps_root={tmp / 'sweeps'}", "wandb=false", "poll_interval=0.2"]
    return sweep([*options, *args[cut:]])


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_fails_fast_with_the_key_and_the_fix(
    case, trained_run, tmp_path, capsys, no_process_launch  # noqa: F811 - the fixture imported above
):
    runs = tmp_path / "runs"
    shutil.copytree(trained_run, runs / "trained", symlinks=True)  # an existing run a mistake must not touch
    shutil.copytree(trained_run, runs / "other", symlinks=True)  # another model
    values = {**make_inputs(tmp_path, runs / "trained", case.needs), "run_b": str(runs / "other")}
    values = more_inputs(tmp_path, values, case)
    if case.before is not None:
        assert run_sweep([arg.format(**values) for arg in case.before], tmp_path) == 0, capsys.readouterr()
    before = snapshot(tmp_path)
    capsys.readouterr()

    args = [arg.format(**values) for arg in case.args]
    if case.entry == "sweep":
        code, err = run_sweep(args, tmp_path), capsys.readouterr().err
    else:  # train: a new run's name, the test's runs folder
        code, err = run_entry(case, [*FAST, f"runs_root={runs}", "name=mistake", *args], tmp_path, capsys)

    assert code == case.code, err[-3000:]
    for piece in case.message:
        assert piece in err, f"{piece!r} not in:\n{err[-3000:]}"
    assert "Traceback" not in err and err.rstrip().splitlines()[-1].startswith("error: ")
    assert snapshot(tmp_path) == before  # nothing created, nothing changed
    if case.before is not None:  # the study still holds only the trial of its own model
        storage = f"sqlite:///{tmp_path / 'sweeps' / 'denoising_steps' / 'study.db'}"
        (trial,) = optuna.load_study(study_name="denoising_steps", storage=storage).trials
        assert trial.state == optuna.trial.TrialState.COMPLETE


def test_a_sweeps_root_that_is_a_file_is_refused_before_any_study(tmp_path, capsys):
    """Issue 14, item 5: every output location is checked before the work starts."""
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a user's file\n")
    code = sweep(["sweep=objective", "preset=tiny", f"sweeps_root={blocker}", "wandb=false"])
    assert code == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith("error: sweeps_root=") and "notes.txt" in message
    assert blocker.read_text() == "a user's file\n" and sorted(tmp_path.iterdir()) == [blocker]
