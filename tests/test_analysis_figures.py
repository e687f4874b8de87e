"""load_runs / load_epochs on real run records and an Optuna study, and every figure's data.

The run records come from real tiny training runs (pretraining and both SFT masking scopes).
Evaluation is slow, so the results.json / results/epoch-<k>.json files are written here, in
evaluate's schema; every expected value below is computed from those files and the records,
never taken from the code under test.
"""

import json
import math
import re
from pathlib import Path

import matplotlib.image
import optuna
import pandas as pd
import pytest
from omegaconf import OmegaConf

from analysis import load_epochs, load_history, load_runs
from analysis.__main__ import main
from analysis.figures import (
    NotEnoughData,
    ablation,
    loss_curves,
    quality_vs_latency,
    quality_vs_nfe,
    reference_table,
    scoring,
    sft_epochs,
)
from analysis.reference import PAPER
from lit_illada.config.paths import CONF_DIR
from lit_illada.train import run
from tests.runs import FAST, compose_train, train

pytestmark = pytest.mark.slow

STEPS = [
    "trainer.max_steps=2",
    "trainer.val_check_interval=1",
    "trainer.log_every_n_steps=1",
    "num_samples=0",
]
# name -> (overrides, (noise, weighting, attention)); model.n_heads=2 in FAST.
PRETRAIN = {
    "lin-elbo-mha-s1": (["seed=1"], ("linear", "elbo", "mha")),
    "lin-elbo-mha-s2": (["seed=2"], ("linear", "elbo", "mha")),
    "cos-unw-gqa-s1": (
        ["seed=1", "noise=cosine", "weighting=unweighted", "model.n_kv_heads=1"],
        ("cosine", "unweighted", "gqa1"),
    ),
}
# name -> (overrides, masking scope, edit similarity after epochs 1, 2, 3)
SFT = {
    "resp-lr1": (["experiment=llada_sft", "optimizer.lr=1e-3"], "sft_response", (0.20, 0.25, 0.27)),
    "resp-lr2": (["experiment=llada_sft", "optimizer.lr=3e-4"], "sft_response", (0.10, 0.19, 0.23)),
    "full-lr1": (["experiment=illada_sft", "optimizer.lr=1e-3"], "sft_full", (0.22, 0.30, 0.36)),
}
# Evaluations: run -> (sampler conf, sampler overrides, scoring conf, mc accuracy, edit sim, nfe, s/sample).
# The eval-* folders hold results.json only, as an evaluate sweep's trials do (ckpt: the first run).
EVALS = {
    "lin-elbo-mha-s1": ("confidence", {"steps": 16}, "likelihood", 0.25, 0.30, 16, 0.80),
    "lin-elbo-mha-s2": ("threshold", {"threshold": 0.9}, "confidence", 0.50, 0.28, 6.5, 0.30),
    "cos-unw-gqa-s1": ("confidence", {"steps": 64}, "likelihood", 0.40, 0.35, 64, 2.50),
    "eval-eb": ("eb", {"gamma": 0.1}, "confidence", 0.45, 0.31, 9, 0.50),
    "eval-factor": ("factor", {"factor": 1.0}, "likelihood", 0.30, 0.20, 7, 0.45),
    "eval-random": ("random", {"steps": 16}, "confidence", 0.35, 0.10, 16, 0.80),
    "eval-conf32": ("confidence", {"steps": 32}, "likelihood", 0.20, 0.33, 32, 1.20),
}


def conf(group: str, name: str, **overrides) -> dict:
    node = OmegaConf.to_container(OmegaConf.load(CONF_DIR / group / f"{name}.yaml"), resolve=False)
    return {**node, "mask_id": 259, **overrides}


def results(
    ckpt: str,
    sampler: str,
    sampler_overrides: dict,
    scorer: str,
    accuracy: float,
    edit: float,
    nfe: float,
    seconds: float,
    epoch: int | None = None,
) -> dict:
    """A results.json as lit_illada.evaluate writes it."""
    sampler_cfg = conf("sampler", sampler, **sampler_overrides)
    scoring_cfg = conf("scoring", scorer)
    knobs = ", ".join(f"{k}={v!r}" for k, v in sampler_cfg.items() if k not in ("_target_", "inner"))
    return {
        "ckpt": ckpt,
        "epoch": epoch,
        "objective": "diffusion",
        "sampler": f"{sampler_cfg['_target_'].rsplit('.', 1)[1]}({knobs})",
        "scorer": f"{scoring_cfg['_target_'].rsplit('.', 1)[1]}(mask_id=259, cfg_scale=0.0)",
        "config": {
            "ckpt": ckpt,
            "tasks": ["mc_nextline", "docstring_to_body"],
            "limit": 8,
            "sampler": sampler_cfg,
            "scoring": scoring_cfg,
            "seed": 0,
            "choices": {"sampler": sampler, "scoring": scorer},  # evaluate's group choices
        },
        "tasks": {
            "mc_nextline": {"accuracy": accuracy, "n": 8, "chance": 0.25, "wall_seconds": 3.0},
            "docstring_to_body": {
                "exact_match": 0.0,
                "parse_rate": 0.5,
                "edit_similarity": edit,
                "nfe": nfe,
                "seconds_per_sample": seconds,
                "tokens_per_s": 64 / seconds,
                "n": 8,
                "wall_seconds": 8 * seconds,
            },
        },
    }


def train_sft(root: Path, jsonl: Path, name: str, *overrides: str) -> None:
    """tests.runs.train sets a token cache key that the JSONL SFT source does not have."""
    cfg = compose_train(
        *FAST,
        *STEPS,
        f"runs_root={root}",
        f"name={name}",
        *overrides,
        "data=sft_jsonl",
        f"data.source.path={jsonl}",
        "data.seq_len=64",
        "data.batch_size=4",
        "data.val_batches=1",
    )
    run(cfg)


@pytest.fixture(scope="module")
def root(tmp_path_factory, cache_dir) -> Path:
    root = tmp_path_factory.mktemp("analysis") / "runs"  # root.parent: this module's own folder
    for name, (overrides, _) in PRETRAIN.items():
        train(root, cache_dir, *STEPS, *overrides, name=name)
    jsonl = root.parent / "sft.jsonl"
    jsonl.write_text(
        "".join(
            json.dumps(
                {"prompt": f"def add{i}(x):\n    '''x plus {i}.'''\n", "response": f"    return x + {i}\n"}
            )
            + "\n"
            for i in range(24)
        )
    )
    for name, (overrides, _, scores) in SFT.items():
        train_sft(root, jsonl, name, *overrides)
        (root / name / "results").mkdir()
        for epoch, score in enumerate(scores, start=1):
            ckpt = str(root / name / "checkpoints" / f"epoch-{epoch}.ckpt")
            epoch_results = results(
                ckpt, "confidence", {"steps": 64}, "likelihood", 0.3, score, 64, 1.0, epoch
            )
            (root / name / "results" / f"epoch-{epoch}.json").write_text(json.dumps(epoch_results))
    for name, spec in EVALS.items():
        (root / name).mkdir(exist_ok=True)
        (root / name / "results.json").write_text(json.dumps(results(str(root / "lin-elbo-mha-s1"), *spec)))
    return root


@pytest.fixture(scope="module")
def runs(root) -> pd.DataFrame:
    return load_runs(root)


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def assert_rendered(data: pd.DataFrame, name: str) -> None:
    png, pdf, md = data.attrs["paths"]
    assert (png.name, pdf.name, md.name) == (f"{name}.png", f"{name}.pdf", f"{name}.md")
    height, width = matplotlib.image.imread(png).shape[:2]
    assert height >= 400 and width >= 600 and png.stat().st_size > 10_000
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 5_000
    assert md.read_text().count("\n") == len(data) + 2


# -- tables ------------------------------------------------------------------------------------


def test_local_runs_table_matches_the_records(root, runs):
    rows = runs.set_index("run")
    assert sorted(rows.index) == sorted({*PRETRAIN, *SFT, *EVALS})
    for name in [*PRETRAIN, *SFT]:
        config = OmegaConf.to_container(OmegaConf.load(root / name / "config.yaml"))
        summary = read(root / name / "summary.json")
        assert rows.loc[name, "val/nll"] == summary["val/nll"]
        assert rows.loc[name, "model.n_kv_heads"] == config["model"]["n_kv_heads"]
        assert rows.loc[name, "optimizer.lr"] == config["optimizer"]["lr"]
        assert rows.loc[name, "seed"] == config["seed"]
        assert rows.loc[name, "stage"] == config["stage_name"]
        history = load_history(rows.loc[name].to_dict() | {"run": name})
        expected = pd.read_csv(root / name / "metrics.csv").dropna(subset=["val/nll"]).drop_duplicates("step")
        assert history.dropna(subset=["val/nll"])["val/nll"].tolist() == expected["val/nll"].tolist()
    for name, (_, setting) in PRETRAIN.items():
        assert tuple(rows.loc[name, ["noise", "weighting", "attention"]]) == setting
        assert rows.loc[name, "masking"] == "pretrain"
    for name, (_, masking, _) in SFT.items():
        assert rows.loc[name, "masking"] == masking
    for name, (sampler, overrides, scorer, accuracy, edit, nfe, seconds) in EVALS.items():
        assert (rows.loc[name, "sampler"], rows.loc[name, "scoring"]) == (sampler, scorer)
        assert rows.loc[name, "docstring_to_body/seconds_per_sample"] == seconds
        assert rows.loc[name, "mc_nextline/accuracy"] == accuracy
        assert rows.loc[name, "docstring_to_body/edit_similarity"] == edit
        assert rows.loc[name, "docstring_to_body/nfe"] == nfe
        for key, value in overrides.items():
            assert rows.loc[name, f"eval.sampler.{key}"] == value
    # Evaluation-only folders borrow the training config of their checkpoint's run.
    assert rows.loc["eval-eb", "model.d_model"] == rows.loc["lin-elbo-mha-s1", "model.d_model"]
    assert pd.isna(rows.loc["eval-eb", "val/nll"]) and pd.isna(rows.loc["eval-eb", "history"])

    sft_only = load_runs(root, filters={"stage": "sft"})
    assert sorted(sft_only["run"]) == sorted(SFT)
    one = load_runs(root / "resp-lr1")
    assert one["run"].tolist() == ["resp-lr1"]


def test_epochs_table_has_one_row_per_run_and_epoch(root):
    epochs = load_epochs(root)
    got = {
        (r.run, r.epoch): r._asdict()
        for r in epochs.rename(columns=lambda c: c.replace("/", "_")).itertuples()
    }
    expected = {
        (name, k + 1): score for name, (_, _, scores) in SFT.items() for k, score in enumerate(scores)
    }
    assert set(got) == set(expected)
    for key, score in expected.items():
        assert got[key]["docstring_to_body_edit_similarity"] == score
        assert got[key]["masking"] == SFT[key[0]][1]


def make_study(root: Path) -> Path:
    """A real Optuna study on SQLite, as the sweep driver leaves it: trials with run_dir."""
    folder = root.parent / "sweeps" / "abl"
    folder.mkdir(parents=True)
    study = optuna.create_study(
        storage=f"sqlite:///{folder / 'study.db'}", study_name="abl", direction="minimize"
    )
    study.set_user_attr("sweep", {"objectives": [["val/nll", "minimize"]]})
    choices = {
        "noise": optuna.distributions.CategoricalDistribution(["linear", "cosine"]),
        "model.n_kv_heads": optuna.distributions.CategoricalDistribution([2, 1]),
    }
    for name, (_overrides, setting) in PRETRAIN.items():
        params = {"noise": setting[0], "model.n_kv_heads": 2 if setting[2] == "mha" else 1}
        study.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions=choices,
                value=read(root / name / "summary.json")["val/nll"],
                user_attrs={"run_dir": str(root / name)},
            )
        )
    study.add_trial(
        optuna.trial.create_trial(
            params={"noise": "cosine", "model.n_kv_heads": 2},
            distributions=choices,
            state=optuna.trial.TrialState.FAIL,
            user_attrs={"run_dir": str(folder / "runs" / "abl-t3"), "error": "boom"},
        )
    )
    # A second, two-objective study without the driver's user attrs: values_<i>.
    other = optuna.create_study(
        storage=f"sqlite:///{folder / 'study.db'}", study_name="other", directions=["maximize", "minimize"]
    )
    other.add_trial(optuna.trial.create_trial(params={}, distributions={}, values=[0.5, 16.0]))
    return folder


def test_optuna_study_source_joins_trials_with_their_run_records(root, runs):
    folder = make_study(root)
    study = load_runs(folder)
    assert sorted(study["run"]) == sorted(PRETRAIN) and set(study["state"]) == {"COMPLETE"}
    for _, row in study.iterrows():
        assert row["val/nll"] == read(root / row["run"] / "summary.json")["val/nll"]  # the objective, by name
        assert row["noise"] == PRETRAIN[row["run"]][1][0]  # param and run record agree
        assert row["model.n_kv_heads"] == (2 if PRETRAIN[row["run"]][1][2] == "mha" else 1)
        assert row["source"] == "optuna" and row["study"] == "abl"
    every = load_runs(f"optuna:sqlite:///{folder / 'study.db'}#abl", filters={"state": ["COMPLETE", "FAIL"]})
    assert sorted(every["state"]) == ["COMPLETE", "COMPLETE", "COMPLETE", "FAIL"]
    failed = every[every["state"] == "FAIL"].iloc[0]
    assert failed["run"] == "abl-t3" and pd.isna(failed["val/nll"])  # no run record: the trial alone
    other = load_runs(f"optuna:sqlite:///{folder / 'study.db'}#other")
    assert (other["values_0"].tolist(), other["values_1"].tolist()) == ([0.5], [16.0])
    with pytest.raises(ValueError, match="name one"):
        load_runs(f"optuna:sqlite:///{folder / 'study.db'}")
    with pytest.raises(FileNotFoundError, match="no such SQLite file"):
        load_runs(f"optuna:sqlite:///{folder / 'missing.db'}")
    # The ablation over the study is the ablation over the same run records.
    pd.testing.assert_frame_equal(
        ablation(study, root.parent / "figs-study"), ablation(runs, root.parent / "figs"), check_like=True
    )


def test_a_journal_study_reads_like_a_sqlite_one(tmp_path):
    """storage=journal:///<file> (the sweep driver's choice for NFS): the same rows, by URL."""
    from optuna.storages.journal import JournalFileBackend  # noqa: PLC0415

    journal = tmp_path / "sweep.journal"
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(journal)))  # as the sweep driver opens it
    study = optuna.create_study(storage=storage, study_name="steps", directions=["maximize", "minimize"])
    study.set_user_attr("sweep", {"objectives": [["sort/exact_match", "maximize"], ["sort/nfe", "minimize"]]})
    steps = {"sampler.steps": optuna.distributions.CategoricalDistribution([8, 16])}
    for value, nfe in ((0.5, 8.0), (0.75, 16.0)):
        params = {"sampler.steps": int(nfe)}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=steps, values=[value, nfe]))
    table = load_runs(f"optuna:journal://{journal}#steps")
    assert table["sort/exact_match"].tolist() == [0.5, 0.75] and table["sampler.steps"].tolist() == [8, 16]
    assert load_runs(f"optuna:journal://{journal}")["study"].tolist() == ["steps", "steps"]  # its only study
    with pytest.raises(FileNotFoundError, match="no such journal file"):
        load_runs(f"optuna:journal://{tmp_path / 'missing.journal'}")
    assert not (tmp_path / "missing.journal").exists()  # a typo creates no empty journal


# -- figures -----------------------------------------------------------------------------------


def test_sft_epochs_figure(root, tmp_path):
    data = sft_epochs(load_epochs(root), tmp_path)
    assert_rendered(data, "sft_epochs")
    for (masking, epoch), line in data.set_index(["masking", "epoch"]).iterrows():
        scores = [s[epoch - 1] for _, m, s in SFT.values() if m == masking]
        assert line["value"] == pytest.approx(sum(scores) / len(scores))
        assert line["n"] == len(scores)
        assert (
            math.isnan(line["std"])
            if len(scores) == 1
            else line["std"] == pytest.approx(pd.Series(scores).std())
        )
    assert sorted(set(data["masking"])) == ["sft_full", "sft_response"] and sorted(set(data["epoch"])) == [
        1,
        2,
        3,
    ]
    best = sft_epochs(load_epochs(root), tmp_path, agg="max").set_index(["masking", "epoch"])
    assert best.loc[("sft_response", 2), "value"] == max(SFT["resp-lr1"][2][1], SFT["resp-lr2"][2][1])
    with pytest.raises(NotEnoughData, match="per-epoch"):
        sft_epochs(load_epochs(root / "lin-elbo-mha-s1"), tmp_path)


def front(points: dict[str, tuple[float, float]]) -> set[str]:
    """Pareto front by a sweep: cheapest first, kept when better than everything cheaper."""
    kept, best = set(), -math.inf
    for name, (_cost, quality) in sorted(points.items(), key=lambda item: (item[1][0], -item[1][1])):
        if quality > best:
            kept.add(name)
            best = quality
    return kept


@pytest.mark.parametrize(("figure", "index"), [(quality_vs_nfe, 5), (quality_vs_latency, 6)])
def test_quality_vs_cost_figures(runs, tmp_path, figure, index):
    data = figure(runs, tmp_path)
    assert_rendered(data, figure.__name__)
    points = {name: (spec[index], spec[4]) for name, spec in EVALS.items()}
    assert {r.run: (r.cost, r.quality) for r in data.itertuples()} == points
    assert dict(zip(data["run"], data["sampler"], strict=True)) == {
        name: spec[0] for name, spec in EVALS.items()
    }
    assert set(data.loc[data["pareto"], "run"]) == front(points)


def test_scoring_figure(runs, tmp_path):
    data = scoring(runs, tmp_path)
    assert_rendered(data, "scoring")
    for scorer in ("likelihood", "confidence"):
        accuracies = [spec[3] for spec in EVALS.values() if spec[2] == scorer]
        row = data[(data["task"] == "mc_nextline") & (data["scoring"] == scorer)].iloc[0]
        assert row["mean"] == pytest.approx(sum(accuracies) / len(accuracies)) and row["n"] == len(accuracies)
    assert len(data) == 2  # one multiple-choice task, two scorers


def test_ablation_figure(root, runs, tmp_path):
    data = ablation(runs, tmp_path)
    assert_rendered(data, "ablation")
    for setting in {s for _, s in PRETRAIN.values()}:
        values = [
            read(root / name / "summary.json")["val/nll"] for name, (_, s) in PRETRAIN.items() if s == setting
        ]
        row = data.set_index(["noise", "weighting", "attention"]).loc[setting]
        assert row["mean"] == pytest.approx(sum(values) / len(values)) and row["n"] == len(values)
    assert len(data) == 2  # SFT runs and evaluation-only folders are not pretraining ablation points


def test_loss_curves_figure(root, runs, tmp_path):
    data = loss_curves(runs, tmp_path, train=True)
    assert_rendered(data, "loss_curves")
    assert set(data["run"]) == {*PRETRAIN, *SFT}  # every run with a per-step history
    for name in data["run"].unique():
        csv = pd.read_csv(root / name / "metrics.csv")
        for metric in ("val/nll", "train/nll"):
            expected = csv.dropna(subset=[metric]).drop_duplicates("step")
            got = data[(data["run"] == name) & (data["metric"] == metric)]
            assert got["step"].tolist() == expected["step"].tolist()
            assert got["value"].tolist() == pytest.approx(expected[metric].tolist())


def paper_tables(text: str) -> dict[tuple[str, str], tuple[float, ...]]:
    """The 'Base' and 'Instruct' tables of REFERENCE.md, parsed here."""
    numbers, setting = {}, None
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] in ("Base", "Instruct") and len(cells) == 4:
            setting = cells[0]
        elif setting and len(cells) == 4 and re.fullmatch(r"[\d.]+", cells[1]):
            numbers[(setting, cells[0])] = tuple(float(c) for c in cells[1:])
        elif not line.strip():
            setting = None
    return numbers


def test_reference_table(runs, tmp_path):
    reference = Path(__file__).resolve().parents[2] / "shared" / "REFERENCE.md"
    if reference.exists():
        assert paper_tables(reference.read_text()) == PAPER
    data = reference_table(runs, tmp_path)
    assert set(data["measured"]) == {"not measured"}  # our embedded tasks are not the paper's benchmarks
    assert (tmp_path / "reference_table.md").read_text().count("not measured") == len(PAPER)
    measured = reference_table(
        pd.DataFrame({"run": ["r"], "stage": ["sft"], "gsm8k/accuracy": [0.5]}), tmp_path
    )
    cells = measured.set_index(["setting", "benchmark"])["measured"]
    assert cells[("Instruct", "GSM8K")] == 50.0 and cells[("Base", "GSM8K")] == "not measured"


def test_cli_draws_every_supported_figure(root, tmp_path, capsys):
    main(["all", "--source", str(root), "--out", str(tmp_path / "all")])
    printed = capsys.readouterr().out
    assert "skipped" not in printed
    for name in ("sft_epochs", "quality_vs_nfe", "quality_vs_latency", "scoring", "ablation", "loss_curves"):
        for suffix in ("png", "pdf", "md"):
            assert str(tmp_path / "all" / f"{name}.{suffix}") in printed
    assert str(tmp_path / "all" / "reference_table.md") in printed

    main(["all", "--source", str(root / "resp-lr1"), "--out", str(tmp_path / "one")])
    printed = capsys.readouterr().out
    assert (
        "skipped quality_vs_nfe" in printed and "skipped scoring" in printed and "loss_curves.png" in printed
    )
    with pytest.raises(SystemExit, match="scoring"):
        main(["scoring", "--source", str(root / "resp-lr1"), "--out", str(tmp_path / "one")])
