"""Bad input to the other commands (generate and evaluate outputs, plan, analysis, convert, lm_eval),
in the style of tests/test_bad_input.py and with its machinery: the real entry point, exit code 2,
one line that names what is wrong and the fix, and no existing file created or changed. The
data-loss case (a user's file as generate's output=) checks the file is left byte for byte."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, OverrideParseException

from analysis.__main__ import main as analysis
from lit_illada.config.checks import exit_on_bad_input
from lit_illada.config.overrides import explain_override_error
from lit_illada.config.paths import CONF_DIR
from lit_illada.convert import main as convert
from lit_illada.plan import run as plan
from tests.test_bad_input import Case, base_args, make_inputs, run_entry, snapshot

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
UNWRITABLE = "/sys/lit_illada-results"  # sysfs: no one may create files there, root included
IN_PROCESS = {"analysis": analysis, "convert": convert}  # argparse commands: main(argv)
# Entries beside test_bad_input's: plan (in process, as hydra.main runs it), plan-cli (python -m
# lit_illada.plan), analysis and convert (their main(argv)).

CASES = [
    # -- generate: where the generations go, and the dtype
    Case(
        "generate-output-is-a-users-file",
        "generate",
        ["prompt=null", "prompts_file={prompts}", "output={notes}"],
        ["output=", "notes.txt was not written by generate", "left untouched", "choose another output="],
        needs=["prompts", "notes"],
    ),
    Case(
        "generate-output-is-a-directory",
        "generate",
        ["prompt=null", "prompts_file={prompts}", "output={folder}"],
        ["output=", "is a directory; give a file path, e.g. output=", "prompts.generations.jsonl"],
        needs=["prompts", "folder"],
    ),
    Case(
        "generate-output-unwritable",
        "generate",
        ["prompt=null", "prompts_file={prompts}", f"output={UNWRITABLE}.jsonl"],
        ["cannot write into /sys", "choose a writable output=<path>"],
        needs=["prompts"],
    ),
    Case(
        "generate-output-with-one-prompt",
        "generate",
        ["output={tmp}/out.jsonl"],
        ["applies to prompts_file= only", "drop output="],
    ),
    Case(
        "generate-dtype-float8",
        "generate",
        ["dtype=float8"],
        ["dtype='float8' is unknown; choose one of", "'bf16'", "'fp32'"],
    ),
    Case("generate-dtype-int64", "generate", ["dtype=int64"], ["dtype='int64' is unknown; choose one of"]),
    # -- evaluate: every output location is checked before the first task runs
    Case(
        "evaluate-output-is-a-directory",
        "evaluate",
        ["output={folder}"],
        ["output=", "is a directory; give a file path, e.g. output=", "results.json"],
        needs=["folder"],
    ),
    Case(
        "evaluate-output-under-a-file",
        "evaluate",
        ["output={notes}/results.json"],
        ["notes.txt is a file, not a folder", "choose another output=<path>"],
        needs=["notes"],
    ),
    Case(
        "evaluate-output-unwritable",
        "evaluate",
        [f"output={UNWRITABLE}.json"],
        ["cannot write into /sys", "choose a writable output=<path>"],
    ),
    Case(
        "evaluate-one-unknown-task-without-brackets",
        "evaluate",
        ["tasks=infil"],
        ["tasks=infil: no such option (did you mean infill?)", "mc_nextline"],
    ),
    # -- plan: its own keys
    Case("plan-mfu-zero", "plan", ["mfu=0"], ["mfu=0: must be a number in (0, 1]", "e.g. 0.4"]),
    Case("plan-mfu-above-one", "plan", ["mfu=40"], ["mfu=40: must be a number in (0, 1]"]),
    Case(
        "plan-gpu-memory-negative",
        "plan",
        ["gpu_memory_gb=-5"],
        ["gpu_memory_gb=-5: must be a number > 0", "80 (H100)"],
    ),
    Case("plan-peak-zero", "plan", ["peak_tflops=0"], ["peak_tflops=0: must be a number > 0"]),
    Case(
        "plan-token-budget-negative",
        "plan",
        ["token_budget=-1"],
        ["token_budget=-1: must be a number of tokens >= 0"],
    ),
    Case("plan-misspelled-key", "plan-cli", ["mfux=0.4"], ["error: mfux: no such key (did you mean mfu?)"]),
    # -- analysis
    Case(
        "analysis-out-is-a-file",
        "analysis",
        ["all", "--source", "{tmp}/runs", "--out", "{notes}"],
        ["--out ", "notes.txt is a file, not a folder", "choose another --out <path>"],
        needs=["notes"],
    ),
    Case(
        "analysis-parity-out-is-a-directory",
        "analysis",
        ["parity", "{run}", "--out", "{folder}"],
        ["--out ", "is a directory; give a file path, e.g. --out ", "parity.md"],
        needs=["folder"],
    ),
    Case(
        "analysis-loss-curve-of-a-corrupt-metrics-csv",
        "analysis",
        ["loss_curve", "{corrupt}", "--out", "{tmp}/loss.png"],
        ["corrupt/metrics.csv: not a readable metrics.csv", "Expected 10 fields in line 4, saw 14"],
        needs=["corrupt"],
    ),
    Case("analysis-filters-not-json", "analysis", ["all", "--source", "{tmp}/runs", "--out", "{tmp}/figs",
                                                   "--filters", "{{stage"], ["--filters '{stage': not JSON"]),
    # -- convert
    Case(
        "convert-to-hf-into-a-run-folder",
        "convert",
        ["to_hf", "{ckpt}", "{run}"],
        ["trained is a training run's folder", "to a new directory"],
    ),
    Case(
        "convert-to-hf-over-a-model-without-overwrite",
        "convert",
        ["to_hf", "{ckpt}", "{exported}"],
        ["already holds a model", "pass --overwrite"],
        needs=["exported"],
    ),
    Case(
        "convert-shard-size-zero",
        "convert",
        ["to_hf", "{ckpt}", "{tmp}/hf", "--shard-size-gb", "0"],
        ["argument --shard-size-gb: 0: must be > 0"],
    ),
]


# -- the files these cases need, beside test_bad_input's ---------------------------------------


def make_command_inputs(tmp: Path, run: Path, needs: list[str]) -> dict[str, str]:
    values = make_inputs(tmp, run, needs)
    if "prompts" in needs:
        (tmp / "prompts.jsonl").write_text(json.dumps({"prompt": "import"}) + "\n")
        values["prompts"] = str(tmp / "prompts.jsonl")
    if "notes" in needs:  # a user's file: one line, no trailing newline
        (tmp / "notes.txt").write_text("buy milk")
        values["notes"] = str(tmp / "notes.txt")
    if "folder" in needs:
        (tmp / "folder").mkdir()
        values["folder"] = str(tmp / "folder")
    if "corrupt" in needs:  # two runs wrote one metrics.csv: rows wider than the header
        corrupt = tmp / "corrupt"
        shutil.copytree(run, corrupt, symlinks=True)
        lines = (run / "metrics.csv").read_text().splitlines()
        assert len(lines[0].split(",")) == 10
        lines.insert(3, ",".join(["1"] * 14))
        (corrupt / "metrics.csv").write_text("\n".join(lines) + "\n")
        values["corrupt"] = str(corrupt)
    if "exported" in needs:  # a model converted before: a second conversion must not replace it silently
        convert(["to_hf", values["ckpt"], str(tmp / "exported")])
        values["exported"] = str(tmp / "exported")
    return values


def run_command(case: Case, args: list[str], tmp: Path, capsys) -> tuple[int, str]:
    """Exit code and stderr of the command as its ``python -m`` form ends."""
    if case.entry in IN_PROCESS:
        try:
            IN_PROCESS[case.entry](args)
        except SystemExit as stop:
            return stop.code, capsys.readouterr().err
        return 0, capsys.readouterr().err
    if case.entry == "plan-cli":  # a composition error goes through run_cli: the real command line
        proc = subprocess.run(
            [sys.executable, "-m", "lit_illada.plan", *args],
            cwd=REPO, capture_output=True, text=True, timeout=300,
        )
        return proc.returncode, proc.stderr
    if case.entry == "plan":  # as run_cli and hydra.main run it
        try:
            with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
                cfg = compose(config_name="plan", overrides=args)
        except (ConfigCompositionException, OverrideParseException) as err:
            return 2, f"error: {explain_override_error(err, 'plan', args)}"
        try:
            exit_on_bad_input(plan, cfg)
        except SystemExit as stop:
            return stop.code, capsys.readouterr().err
        return 0, capsys.readouterr().err
    return run_entry(case, args, tmp, capsys)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_to_a_command_fails_fast_and_changes_nothing(
    case, trained_run, cache_dir, tmp_path, capsys
):
    runs = tmp_path / "runs"
    shutil.copytree(trained_run, runs / "trained", symlinks=True)  # the existing run a mistake must not touch
    values = make_command_inputs(tmp_path, runs / "trained", case.needs)
    args = [arg.format(**values) for arg in [*base_args(case, runs, cache_dir), *case.args]]
    before = snapshot(tmp_path)
    capsys.readouterr()

    code, err = run_command(case, args, tmp_path, capsys)

    assert code == case.code, err[-3000:]
    for piece in case.message:
        assert piece in err, f"{piece!r} not in:\n{err[-3000:]}"
    assert "Traceback" not in err
    last = err.rstrip().splitlines()[-1]
    assert last.startswith("error: ") or ": error: argument " in last  # argparse's own line for a flag
    assert snapshot(tmp_path) == before  # nothing created, nothing changed: no stray .tmp either
    if "notes" in case.needs:
        assert (tmp_path / "notes.txt").read_bytes() == b"buy milk"


# -- the cases that are not a refusal at the start --------------------------------------------------


def compose_generate(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="generate", overrides=list(overrides))


@pytest.mark.parametrize("dtype", ["bf16", "fp32", "bfloat16"])
def test_generate_accepts_the_usual_dtype_aliases(trained_run, dtype):
    from lit_illada.generate import run as generate  # noqa: PLC0415

    cfg = compose_generate(f"ckpt={trained_run}", "prompt=import", f"dtype={dtype}", "device=cpu",
                           "sampler.gen_length=4", "sampler.block_length=4", "sampler.steps=4")
    [row] = generate(cfg)
    assert row["nfe"] == 4


def read_only(folder: Path, argv: list[str]) -> list[str]:
    """``argv`` run with ``folder`` read-only: a read-only bind mount in a private mount namespace
    when root (who ignores permission bits), the permission bits otherwise."""
    if os.geteuid() != 0:
        for path in [folder, *folder.rglob("*")]:
            if path.is_dir():
                path.chmod(0o555)
        return argv
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip("root without mount namespaces: no way to make a read-only folder here")
    mount = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"'
    return ["unshare", "-m", "sh", "-c", mount, str(folder), *argv]


def test_evaluate_into_a_read_only_run_folder_fails_before_any_task(trained_run, tmp_path):
    run = tmp_path / "trained"
    shutil.copytree(trained_run, run, symlinks=True)
    before = snapshot(tmp_path)
    argv = [
        sys.executable, "-m", "lit_illada.evaluate", f"ckpt={run}", "tasks=[infill,mc_nextline]", "limit=1"
    ]
    try:
        proc = subprocess.run(read_only(run, argv), cwd=REPO, capture_output=True, text=True, timeout=300)
    finally:
        for path in [run, *run.rglob("*")]:
            if path.is_dir():
                path.chmod(0o755)
    assert proc.returncode == 2, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: output={run}/results.json: cannot write into {run}"), last
    assert "choose a writable output=" in last
    assert "infill:" not in proc.stdout and "mc_nextline:" not in proc.stdout  # no task ran
    assert snapshot(tmp_path) == before


def test_evaluate_takes_one_task_name_without_brackets_on_the_command_line(trained_run, tmp_path):
    """Regression guard: `tasks=infill` once became the tasks ['i','n','f','i','l','l']."""
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "lit_illada.evaluate", f"ckpt={trained_run}", "tasks=infill", "limit=1",
         f"output={out}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list(json.loads(out.read_text())["tasks"]) == ["infill"]


def test_analysis_of_wandb_without_an_api_key_says_how_to_log_in(tmp_path):
    # No key anywhere wandb looks (the environment, ~/.netrc, its settings): nothing remote is reached.
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_") and k != "NETRC"}
    env.update(HOME=str(tmp_path), WANDB_CONFIG_DIR=str(tmp_path / "wandb"), NETRC=str(tmp_path / "netrc"))
    proc = subprocess.run(
        [sys.executable, "-m", "analysis", "all", "--source", "wandb:someone/project",
         "--out", str(tmp_path / "figs")],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=env, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("error: source='wandb:someone/project': W&B needs an API key")
    assert "`wandb login`" in line and "WANDB_API_KEY" in line and "wandb-offline:<dir>" in line
    assert not (tmp_path / "figs").exists()


def test_analysis_skips_a_run_whose_metrics_csv_is_corrupt_and_draws_the_others(
    trained_run, tmp_path, caplog
):
    runs = tmp_path / "runs"
    shutil.copytree(trained_run, runs / "good", symlinks=True)
    make_command_inputs(runs, trained_run, ["corrupt"])  # runs/corrupt: rows wider than the header

    analysis(["loss_curves", "--source", str(runs), "--out", str(tmp_path / "figs")])

    err = caplog.text
    corrupt = runs / "corrupt" / "metrics.csv"
    assert f"warning: skipped run corrupt: {corrupt}: not a readable metrics.csv" in err
    table = (tmp_path / "figs" / "loss_curves.md").read_text()
    assert "good" in table and "corrupt" not in table


def test_lm_eval_takes_device_in_model_args_beside_its_own_device_flag(trained_run, tmp_path, monkeypatch):
    """lm-eval's CLI passes --device (default cuda:0) beside --model_args; device=cpu in both
    places raised `got multiple values for keyword argument 'device'`."""
    lm_eval = pytest.importorskip("lm_eval", reason="the eval extra (lm-eval) is not installed")
    from lm_eval.tasks import TaskManager  # noqa: PLC0415

    import lit_illada.evaluation.lm_eval_adapter  # noqa: F401, PLC0415 - registers the model
    from lit_illada.evaluation.export import export_mc_nextline  # noqa: PLC0415

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")  # the task's data is a local JSONL file
    export_mc_nextline(tmp_path, limit=2)
    as_dict = {"ckpt": str(trained_run), "device": "cpu", "scoring.mc_num": 2}  # lm-eval's two forms
    for model_args in (f"ckpt={trained_run},device=cpu,scoring.mc_num=2", as_dict):
        results = lm_eval.simple_evaluate(
            model="lit_illada", model_args=model_args, device="cuda:0",  # what the CLI passes by default
            tasks=["lit_mc_nextline"], task_manager=TaskManager(include_path=str(tmp_path)), limit=2,
        )
        assert results["n-samples"]["lit_mc_nextline"]["effective"] == 2


def test_plan_of_any_depth_builds_no_module(monkeypatch):
    """`plan model.n_layers=100000` built every layer (on the meta device) and hung: counts are now
    analytic. A Transformer built during planning fails this test at once."""
    from lit_illada.core import model  # noqa: PLC0415
    from lit_illada.plan import report  # noqa: PLC0415

    def refuse(self, *args, **kwargs):
        raise AssertionError("the plan built the model")

    monkeypatch.setattr(model.Transformer, "__init__", refuse)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="plan", overrides=["model.n_layers=100000"])
    text, fits = report(cfg)
    d, kv, f, vocab = 4096, 8 * 128, 14336, 155136  # illada_8b with 100,000 blocks
    block = 2 * d + 2 * d * d + 2 * kv * d + 3 * f * d
    assert f"{vocab * d + d + 100_000 * block:,} parameters" in text and not fits
