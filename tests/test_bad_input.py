"""Bad input to every entry point, in one place: each case runs the real entry point as the
command line does (Hydra composition, then ``exit_on_bad_input``; the sweep driver's ``main``)
and expects exit code 2 with one line that names the key and the fix (timings live in benchmarks/), with no
file of an existing run created or changed."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, OverrideParseException

from lit_illada.config.paths import CONF_DIR
from lit_illada.config.checks import exit_on_bad_input, usable_cpus
from lit_illada.data import TextCorpus
from lit_illada.evaluate import evaluate
from lit_illada.generate import run as generate
from lit_illada.config.overrides import explain_override_error
from lit_illada.sweep import main as sweep
from lit_illada.train import run as train
from tests.runs import FAST
from tests.test_config import _tiny_hf_tokenizer

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
QUICK_SAMPLER = ["sampler.gen_length=16", "sampler.block_length=8", "sampler.steps=16"]
TOO_MANY = usable_cpus() + 1  # CPU processes for trainer=ddp than this machine has cores
ENTRIES = {"train": ("train", train), "generate": ("generate", generate), "evaluate": ("evaluate", evaluate)}


@dataclass
class Case:
    id: str
    entry: str  # train | generate | evaluate | sweep | cli (python -m lit_illada.generate)
    args: list[str]  # overrides; {run}, {ckpt}, {tmp} are filled in
    message: list[str]  # every piece must appear in stderr
    code: int = 2
    fresh_run: bool = False  # train under a new name (the case trains); else re-use the existing run's name
    needs: list[str] = field(default_factory=list)  # fixtures the case files need



CASES = [
    # -- composition: unknown option, misspelled key, unparsable value
    Case(
        "unknown-group-option",
        "train",
        ["noise=cosin"],
        ["noise=cosin: no such option (did you mean cosine?)", "cosine, linear, polynomial"],
    ),
    Case(
        "misspelled-key",
        "train",
        ["trainer.max_stpes=5"],
        ["trainer.max_stpes: no such key (did you mean trainer.max_steps?)"],
    ),
    Case("unparsable-value", "train", ["optimizer.lr=[1"], ["optimizer.lr=[1: cannot parse it"]),
    Case(
        "misspelled-key-cli",
        "cli",
        ["sampler.stpes=5"],
        ["error: sampler.stpes: no such key (did you mean sampler.steps?)"],
    ),
    # -- train: types and ranges
    Case("lr-not-a-number", "train", ["optimizer.lr=abc"], ["optimizer.lr='abc': expected a number"]),
    Case(
        "batch-size-float",
        "train",
        ["data.batch_size=1.5"],
        ["data.batch_size=1.5: expected a positive integer"],
    ),
    Case("lr-negative", "train", ["optimizer.lr=-0.1"], ["optimizer.lr=-0.1: must be > 0"]),
    Case("lr-zero", "train", ["optimizer.lr=0"], ["optimizer.lr=0: must be > 0"]),
    Case(
        "seq-len-above-model",
        "train",
        ["data.seq_len=4096"],
        ["data.seq_len=4096 exceeds model.max_seq_len=1024", "lower data.seq_len"],
    ),
    Case(
        "vocab-above-model",
        "train",
        ["model.vocab_size=100"],
        ["model.vocab_size=100 is smaller than the tokenizer's vocabulary (260)", "model.vocab_size>=260"],
    ),
    Case(
        "mask-id-out-of-range",
        "train",
        ["tokenizer=hf", "tokenizer.path={tokenizer}", "tokenizer.mask_id=5000"],
        ["tokenizer.mask_id=5000 is outside the vocabulary [0, "],
        needs=["tokenizer"],
    ),
    Case(
        "sampler-steps-above-gen-length",
        "train",
        ["sampler.steps=32"],
        ["sampler.steps=32 exceeds sampler.gen_length=16", "at most 16"],
    ),
    Case(
        "run-name-outside-runs-root",
        "train",
        ["name=../elsewhere"],
        ["name='../elsewhere': must be a run name", "runs_root="],
    ),
    Case(
        "devices-above-cpu-cores",
        "train",
        [
            "trainer=ddp",
            "trainer.accelerator=cpu",
            "trainer.precision=32-true",
            f"trainer.devices={TOO_MANY}",
        ],
        [
            f"trainer.devices={TOO_MANY}: this machine has {TOO_MANY - 1} CPU cores",
            f"devices<={TOO_MANY - 1}",
        ],
    ),
    Case(
        "init-from-other-model",
        "train",
        ["init_from={ckpt}", "model.d_model=32"],
        ["was trained with a different model config", "'d_model': (64, 32)", "model= preset"],
    ),
    Case(
        "resume-with-other-model",
        "train",
        ["model.d_model=32"],
        ["name=trained:", "holds a run of a different model config", "'d_model': (64, 32)", "new name="],
    ),
    Case(
        "init-from-truncated",
        "train",
        ["init_from={truncated}"],
        ["init_from=", "cannot be read as a checkpoint"],
        needs=["truncated"],
    ),
    # -- train: data
    Case(
        "corpus-empty-folder",
        "train",
        ["data=text", "data.corpus.paths=[{empty}]", "resume=force"],
        ["data.corpus.paths=", "no files matched", "globs such as 'corpus/*.txt'"],
        needs=["empty"],
    ),
    Case(
        "corpus-binary-files",
        "train",
        ["data=text", "data.corpus.paths=[{binary}/*.txt]", "resume=force"],
        ["data.corpus.paths: none of the 2 .txt files is UTF-8 text", "Convert them to UTF-8"],
        needs=["binary"],
    ),
    Case(
        "corpus-latin1-text",
        "train",
        ["data=text", "data.corpus.paths=[{latin1}/*.txt]", "resume=force"],
        [
            "data.corpus.paths: none of the 2 .txt files is UTF-8 text",
            "not UTF-8",
            "iconv -f latin1 -t utf-8",
        ],
        needs=["latin1"],
    ),
    # (The corpus cases re-run the existing run with other data: resume=force lets that change
    # through, so that the corpus itself is what is refused.)
    # -- train: diverges (a behaviour, not a start-up check: it trains, then stops with the fix)
    Case(
        "loss-not-finite",
        "train",
        ["optimizer.lr=1e30", "lr_schedule=constant", "trainer.max_steps=6", "trainer.val_check_interval=3"],
        ["loss became nan at step", "Try a lower optimizer.lr"],
        code=1,
        fresh_run=True,
    ),
    # -- generate: sampler knobs, prompt, checkpoint
    Case(
        "block-length-not-dividing",
        "generate",
        ["sampler.block_length=5"],
        ["sampler.block_length=5 must divide sampler.gen_length=16", "e.g. 4 or 8"],
    ),
    Case(
        "steps-not-multiple-of-blocks",
        "generate",
        ["sampler.steps=3"],
        ["sampler.steps=3 must be a multiple of the number of blocks", "e.g. 2 or 4"],
    ),
    Case(
        "threshold-zero",
        "generate",
        ["sampler=threshold", "sampler.threshold=0"],
        ["sampler.threshold=0: must be in (0, 1]"],
    ),
    Case(
        "threshold-above-one",
        "generate",
        ["sampler=threshold", "sampler.threshold=1.5"],
        ["sampler.threshold=1.5: must be in (0, 1]"],
    ),
    Case("gen-length-zero", "generate", ["sampler.gen_length=0"], ["sampler.gen_length=0 must be >= 1"]),
    Case(
        "temperature-negative",
        "generate",
        ["sampler.temperature=-1"],
        ["sampler.temperature=-1 must be >= 0 (0 is greedy)"],
    ),
    Case(
        "cfg-scale-negative", "generate", ["sampler.cfg_scale=-0.5"], ["sampler.cfg_scale=-0.5 must be >= 0"]
    ),
    Case("batch-size-zero", "generate", ["batch_size=0"], ["batch_size=0: expected a positive integer"]),
    Case(
        "prompt-too-long",
        "generate",
        ["prompt=" + "x" * 1100],
        [
            "prompt of 1100 tokens + sampler.gen_length=16 exceeds the model's max_seq_len=1024",
            "shorten the prompt",
        ],
    ),
    Case("checkpoint-not-given", "generate", ["ckpt=???"], ["error: ckpt: needs a value; pass ckpt=..."]),
    Case(
        "generate-missing-checkpoint",
        "generate",
        ["ckpt={tmp}/no/such/run"],
        ["ckpt=", "no such file or run directory"],
    ),
    Case(
        "generate-truncated-checkpoint",
        "generate",
        ["ckpt={truncated}"],
        ["ckpt=", "truncated.ckpt", "cannot be"],
        needs=["truncated"],
    ),
    # -- evaluate
    Case(
        "evaluate-missing-checkpoint",
        "evaluate",
        ["ckpt={tmp}/no/such/run"],
        ["ckpt=", "no such file or run directory"],
    ),
    Case(
        "evaluate-truncated-checkpoint",
        "evaluate",
        ["ckpt={truncated}"],
        ["ckpt=", "truncated.ckpt", "cannot be"],
        needs=["truncated"],
    ),
    Case(
        "evaluate-unknown-task",
        "evaluate",
        ["tasks=[gsm8k]"],
        ["tasks=gsm8k: no such option; choose one of", "mc_nextline"],
    ),
    Case("mc-num-zero", "evaluate", ["scoring.mc_num=0"], ["scoring.mc_num=0: must be >= 1"]),
    Case("limit-zero", "evaluate", ["limit=0"], ["limit=0: expected a positive integer"]),
    # -- sweep
    Case(
        "sweep-file-missing",
        "sweep",
        ["sweep={tmp}/no_such_sweep.yaml"],
        ["sweep=", "no_such_sweep.yaml: no such file"],
    ),
    Case(
        "sweep-unknown-key",
        "sweep",
        ["sweep={sweep_typo}"],
        ["space.optimizer.learning_rate", "does not compose with conf/train.yaml"],
        needs=["sweep_typo"],
    ),
    Case(
        "sweep-storage-unopenable",
        "sweep",
        ["sweep={sweep_ok}", "storage=sqlite:///{tmp}/no/such/folder/study.db"],
        ["storage=sqlite:///", "cannot open it", "in an existing folder"],
        needs=["sweep_ok"],
    ),
]


# -- the files some cases need ------------------------------------------------------------------------


def make_inputs(tmp: Path, run: Path, needs: list[str]) -> dict[str, str]:
    values = {"tmp": str(tmp), "run": str(run), "ckpt": str(run / "checkpoints" / "best.ckpt")}
    if "tokenizer" in needs:
        values["tokenizer"] = str(_tiny_hf_tokenizer(tmp))
    if "truncated" in needs:
        data = (run / "checkpoints" / "best.ckpt").read_bytes()
        (tmp / "truncated.ckpt").write_bytes(data[: len(data) // 3])  # a copy cut short mid-write
        values["truncated"] = str(tmp / "truncated.ckpt")
    if "empty" in needs:
        (tmp / "empty").mkdir()
        values["empty"] = str(tmp / "empty")
    if "binary" in needs:
        (tmp / "binary").mkdir()
        for name in ("a.txt", "b.txt"):  # random bytes, and zeros (valid UTF-8, but not text)
            (tmp / "binary" / name).write_bytes(bytes(range(256)) * 8 if name == "a.txt" else bytes(2048))
        values["binary"] = str(tmp / "binary")
    if "latin1" in needs:
        (tmp / "latin1").mkdir()
        for name in ("a.txt", "b.txt"):
            (tmp / "latin1" / name).write_bytes("café crème, déjà vu\n".encode("latin-1") * 50)
        values["latin1"] = str(tmp / "latin1")
    for name, space_key in (("sweep_typo", "optimizer.learning_rate"), ("sweep_ok", "optimizer.lr")):
        if name in needs:
            spec = {
                "command": "train",
                "sampler": {"type": "grid"},
                "objectives": [{"metric": "val/nll", "direction": "minimize"}],
                "space": {space_key: {"type": "categorical", "choices": [0.003, 0.001]}},
                "fixed": FAST,
            }
            (tmp / f"{name}.yaml").write_text(yaml.safe_dump(spec))
            values[name] = str(tmp / f"{name}.yaml")
    return values


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (symlinks as their target name) and its content hash."""
    files = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            files[str(path.relative_to(root))] = "-> " + str(path.readlink())
        elif path.is_file():
            files[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


# -- running an entry point as the command line does --------------------------------------------------


def run_entry(case: Case, args: list[str], tmp: Path, capsys) -> tuple[int, str]:
    """Exit code and stderr of the entry point, the way ``python -m lit_illada.<entry>`` ends."""
    if case.entry == "sweep":
        code = sweep([*args, f"sweeps_root={tmp / 'sweeps'}"])
        return code, capsys.readouterr().err
    if case.entry == "cli":
        proc = subprocess.run(
            [sys.executable, "-m", "lit_illada.generate", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
        )
        return proc.returncode, proc.stderr
    config_name, function = ENTRIES[case.entry]
    try:  # what lit_illada.config.overrides.run_cli does around hydra.main
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name=config_name, overrides=args)
    except (ConfigCompositionException, OverrideParseException) as err:
        return 2, f"error: {explain_override_error(err, config_name, args)}"
    try:
        exit_on_bad_input(function, cfg)
    except SystemExit as stop:
        if isinstance(stop.code, str):  # SystemExit("error: ..."): Python prints it and exits 1
            return 1, capsys.readouterr().err + stop.code
        return stop.code, capsys.readouterr().err
    return 0, capsys.readouterr().err


def base_args(case: Case, runs: Path, cache_dir: Path) -> list[str]:
    if case.entry == "train":
        name = "fresh" if case.fresh_run else "trained"  # a re-run of the existing run, with a mistake
        return [
            *FAST,
            f"runs_root={runs}",
            f"name={name}",
            f"data.cache_dir={cache_dir}",
            "trainer.max_steps=30",
            "trainer.val_check_interval=10",
        ]
    # The adaptive samplers (sampler=threshold, ...) take no steps.
    quick = [o for o in QUICK_SAMPLER if not (o.startswith("sampler.steps=") and "sampler=threshold" in case.args)]
    if case.entry in ("generate", "cli"):
        return ["ckpt={run}", "prompt=import", *quick]
    if case.entry == "evaluate":
        return ["ckpt={run}", "limit=2", "scoring.mc_num=2", *quick, "output={tmp}/results.json"]
    return []


@pytest.fixture
def no_process_launch(monkeypatch):
    """Should a devices check ever slip, Lightning must not start 63 copies of pytest."""
    from lightning.pytorch.strategies.launchers import subprocess_script  # noqa: PLC0415

    def refuse(*args, **kwargs):
        raise AssertionError("Lightning tried to start processes: the devices check did not fire")

    monkeypatch.setattr(subprocess_script._SubprocessScriptLauncher, "launch", refuse)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_fails_fast_with_the_key_and_the_fix(
    case, trained_run, cache_dir, tmp_path, capsys, no_process_launch
):
    runs = tmp_path / "runs"
    shutil.copytree(trained_run, runs / "trained", symlinks=True)  # the existing run a mistake must not touch
    values = make_inputs(tmp_path, runs / "trained", case.needs)
    args = [arg.format(**values) for arg in [*base_args(case, runs, cache_dir), *case.args]]
    before = snapshot(tmp_path)
    capsys.readouterr()

    code, err = run_entry(case, args, tmp_path, capsys)

    assert code == case.code, err[-3000:]
    for piece in case.message:
        assert piece in err, f"{piece!r} not in:\n{err[-3000:]}"
    if case.code == 2:
        assert "Traceback" not in err and err.rstrip().splitlines()[-1].startswith("error: ")
    if case.fresh_run:  # it trained: its own record says why it stopped
        summary = json.loads((runs / "fresh" / "summary.json").read_text())
        assert summary["status"] == "failed" and "nan" in summary["error"]
        shutil.rmtree(runs / "fresh")
    after = snapshot(tmp_path)
    assert after == before  # nothing created, nothing changed


def test_a_corpus_with_some_undecodable_files_skips_them_with_a_warning(tmp_path, caplog):
    """The decision for non-UTF-8 text: skip the file and say so; fail (above) only when no file is left."""
    (tmp_path / "good.txt").write_text("def f(x):\n    return x\n")
    (tmp_path / "latin1.txt").write_bytes("café\n".encode("latin-1"))
    corpus = TextCorpus(paths=[str(tmp_path / "*.txt")], val_fraction=0.0, test_fraction=0.0)
    with caplog.at_level(logging.WARNING):
        assert list(corpus.documents("train")) == ["def f(x):\n    return x\n"]
    assert "skipped 1 of 2 .txt files that are not UTF-8 text" in caplog.text and "latin1.txt" in caplog.text
