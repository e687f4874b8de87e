"""W&B as an analysis source: offline runs written by real training, and the W&B API.

The API test uses RECORDED responses through a fake ``Api``: no W&B server can be reached
here. tests/data/wandb_api/ holds real runs of this project in the shape the GraphQL API
returns them (its README says how they were made); the fake builds the SDK's own
``wandb.apis.public.Run`` from each, so config unwrapping and summary parsing are the
SDK's, and only ``scan_history`` replays recorded rows.
"""

import json
import struct
from pathlib import Path

import pandas as pd
import pytest
import yaml

from analysis import load_epochs, load_history, load_runs
from analysis.wandb_offline import read_offline_run, read_records
from tests.runs import train

DATA = Path(__file__).parent / "data" / "wandb_api"


def csv_history(run_dir: Path) -> pd.DataFrame:
    """metrics.csv read here, independently of analysis.load_metrics."""
    return pd.read_csv(run_dir / "metrics.csv").groupby("step").max()


@pytest.mark.slow
def test_offline_wandb_run_of_a_real_training_run_is_read_back(tmp_path, cache_dir):
    train(
        tmp_path,
        cache_dir,
        "logger=wandb",
        "logger.wandb.mode=offline",
        "trainer.max_steps=4",
        "trainer.val_check_interval=2",
        "trainer.log_every_n_steps=1",
        "num_samples=0",
        name="wb",
    )
    run_dir = tmp_path / "wb"
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    expected = csv_history(run_dir)

    (row,) = [r for _, r in load_runs(f"wandb-offline:{run_dir / 'wandb'}").iterrows()]
    assert row["run"] == "wb" and row["source"] == "wandb-offline" and row["stage"] == "pretrain"
    assert row["model.n_layers"] == config["model"]["n_layers"]
    assert row["optimizer.lr"] == config["optimizer"]["lr"]
    assert row["noise._target_"] == config["noise"]["_target_"] and row["noise"] == "linear"
    assert {"noise=linear", "attention=mha"} <= set(row["wandb.tags"])  # the tags name what the columns do
    assert row["val/nll"] == pytest.approx(summary["val/nll"])  # W&B's summary: the last value logged

    history = load_history(row).set_index("step")
    assert list(history.index) == list(expected.index)
    for column in ("train/loss", "val/nll", "lr"):
        pd.testing.assert_series_equal(history[column], expected[column], check_names=False, rtol=1e-6)

    # logger=wandb with logger.csv=false leaves no metrics.csv: the run record falls back to W&B.
    (run_dir / "metrics.csv").unlink()
    (local,) = [r for _, r in load_runs(run_dir).iterrows()]
    assert local["source"] == "local" and local["history"].startswith("wandb-offline:")
    assert local["val/nll"] == summary["val/nll"]  # summary.json still wins over W&B's summary
    pd.testing.assert_series_equal(
        load_history(local).set_index("step")["val/nll"], expected["val/nll"], check_names=False, rtol=1e-6
    )


# -- recorded API responses ------------------------------------------------------------------


class RecordedApi:
    """Stands in for ``wandb.Api()``: runs() and run() answer from tests/data/wandb_api/."""

    def __init__(self, folder: Path) -> None:
        recorded = json.loads((folder / "runs.json").read_text())
        self.entity, self.project, self.nodes = recorded["entity"], recorded["project"], recorded["runs"]
        self.histories = json.loads((folder / "history.json").read_text())
        self.calls: list[tuple] = []

    def _run(self, node: dict):
        from wandb.apis.public import Run  # noqa: PLC0415

        histories = self.histories

        class RecordedRun(Run):
            def scan_history(self, keys=None, page_size=1000, min_step=0, max_step=None, use_cache=True):
                rows = histories.get(self.id, [])
                return iter(
                    [
                        r
                        for r in rows
                        if r["_step"] >= min_step
                        and (max_step is None or r["_step"] < max_step)
                        and all(k in r for k in keys or [])
                    ]
                )

            def history(self, *args, **kwargs):
                raise AssertionError(
                    "sampled history() used; analysis must read every row with scan_history()"
                )

        return RecordedRun(
            None, self.entity, self.project, node["name"], attrs=node, include_sweeps=False, lazy=False
        )

    def runs(self, path, filters=None, order="+created_at", per_page=50, include_sweeps=False, lazy=True):
        self.calls.append(("runs", path, filters))
        assert path == f"{self.entity}/{self.project}"
        return [self._run(node) for node in self.nodes]

    def run(self, path=""):
        self.calls.append(("run", path))
        entity, project, run_id = path.split("/")
        assert (entity, project) == (self.entity, self.project)
        return self._run(next(node for node in self.nodes if node["name"] == run_id))


def recorded(name: str) -> dict:
    """A recorded run's node, config unwrapped and summary parsed here (not by the code under test)."""
    node = next(n for n in json.loads((DATA / "runs.json").read_text())["runs"] if n["displayName"] == name)
    config = {k: v["value"] for k, v in json.loads(node["config"]).items() if k != "_wandb"}
    return {**node, "config": config, "summary": json.loads(node["summaryMetrics"])}


def test_wandb_api_source_reads_recorded_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))  # the SDK's Run makes a folder for downloads there
    api = RecordedApi(DATA)
    filters = {"$and": [{"config.stage_name": {"$in": ["pretrain", "sft"]}}, {"state": "finished"}]}
    runs = load_runs("wandb:lit-illada/lit_illada", filters=filters, api=api).set_index("run")
    assert api.calls == [("runs", "lit-illada/lit_illada", filters)]  # passed to the server as given

    # Training runs are rows; eval runs (job_type eval) joined to the run their checkpoint came from.
    assert sorted(runs.index) == ["base", "sft-resp"]
    base, sft = recorded("base"), recorded("sft-resp")
    assert runs.loc["base", "val/nll"] == base["summary"]["val/nll"]
    assert runs.loc["base", "model.d_model"] == base["config"]["model"]["d_model"]
    assert runs.loc["base", "wandb.group"] == "objective" and runs.loc["base", "source"] == "wandb"
    assert runs.loc["sft-resp", "optimizer.lr"] == sft["config"]["optimizer"]["lr"]
    assert runs.loc["sft-resp", "masking"] == "sft_response" and runs.loc["sft-resp", "stage"] == "sft"
    evaluation = recorded("base-eval")
    assert evaluation["config"]["ckpt"].endswith("/base")
    for key in ("mc_nextline/accuracy", "docstring_to_body/edit_similarity", "docstring_to_body/nfe"):
        assert runs.loc["base", key] == evaluation["summary"][key]
    assert runs.loc["base", "scoring"] == "likelihood"
    assert runs.loc["base", "eval.scoring.mc_num"] == evaluation["config"]["config"]["scoring"]["mc_num"]

    epochs = load_epochs("wandb:lit-illada/lit_illada", api=api)
    expected = {
        recorded(f"results-eval-epoch{k}")["config"]["epoch"]: recorded(f"results-eval-epoch{k}")["summary"][
            "docstring_to_body/edit_similarity"
        ]
        for k in (1, 2)
    }
    assert epochs["run"].tolist() == ["sft-resp", "sft-resp"]
    assert dict(zip(epochs["epoch"], epochs["docstring_to_body/edit_similarity"], strict=True)) == expected
    assert set(epochs["masking"]) == {"sft_response"}

    # History: every recorded row (scan_history), Lightning's global step as the step.
    rows = json.loads((DATA / "history.json").read_text())[base["name"]]
    history = load_history(runs.loc["base"].to_dict() | {"run": "base"}, api=api)
    assert api.calls[-1] == ("run", f"lit-illada/lit_illada/{base['name']}")
    val = [(r["trainer/global_step"], r["val/nll"]) for r in rows if "val/nll" in r]
    assert (
        list(history.dropna(subset=["val/nll"])[["step", "val/nll"]].itertuples(index=False, name=None))
        == val
    )
    train_steps = sorted({r["trainer/global_step"] for r in rows if "train/loss" in r})
    assert history.dropna(subset=["train/loss"])["step"].tolist() == train_steps
    assert not [c for c in history.columns if c.startswith("_") or c in ("epoch", "trainer/global_step")]


def test_wandb_api_is_the_default(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    api = RecordedApi(DATA)
    monkeypatch.setattr("analysis.wandb_api.default_api", lambda source: api)
    assert len(load_runs("wandb:lit-illada/lit_illada")) == 2 and api.calls[0][0] == "runs"


# -- the transaction log's framing -------------------------------------------------------------


def frame(payloads: list[bytes], block: int = 32 * 1024) -> bytes:
    """LevelDB log framing as W&B writes it (written here from the format, not from the reader)."""
    out = bytearray(b":W&B" + (0xBEE1).to_bytes(2, "little") + b"\x00")
    for data in payloads:
        first = True
        while True:
            left = block - len(out) % block
            if left < 7:
                out += b"\x00" * left
                continue
            chunk, data = data[: left - 7], data[left - 7 :]
            kind = (1 if not data else 2) if first else (4 if not data else 3)
            out += struct.pack("<IHB", 0, len(chunk), kind) + chunk
            first = False
            if not data:
                break
    return bytes(out)


def test_records_spanning_blocks_and_a_torn_tail_are_read(tmp_path):
    from wandb.proto import wandb_internal_pb2 as pb  # noqa: PLC0415

    run = pb.Record()
    run.run.run_id, run.run.display_name, run.run.job_type = "abc", "big", "pretrain"
    config = pb.Record()
    item = config.config.update.add()
    item.key, item.value_json = "notes", json.dumps("x" * 70_000)  # spans three blocks
    rows = []
    for step in range(300):
        record = pb.Record()
        for key, value in (("trainer/global_step", step), ("train/loss", 1.0 / (step + 1))):
            entry = record.history.item.add()
            entry.nested_key.append(key)
            entry.value_json = json.dumps(value)
        rows.append(record)
    exit_record = pb.Record()
    exit_record.exit.exit_code = 0
    payloads = [r.SerializeToString() for r in (run, config, *rows, exit_record)]
    path = tmp_path / "run-abc.wandb"
    path.write_bytes(frame(payloads))

    assert [r.SerializeToString() for r in read_records(path)] == payloads
    offline = read_offline_run(path)
    assert offline.name == "big" and offline.state == "finished" and len(offline.config["notes"]) == 70_000
    assert [row["train/loss"] for row in offline.history] == [1.0 / (s + 1) for s in range(300)]

    path.write_bytes(frame(payloads)[:-5])  # killed mid-write: the complete records still read
    assert len(list(read_records(path))) == len(payloads) - 1

    path.write_bytes(b"not a wandb file")
    with pytest.raises(ValueError, match="not a W&B transaction log"):
        list(read_records(path))


def test_unknown_source_names_the_accepted_forms(tmp_path):
    with pytest.raises(FileNotFoundError, match="wandb:<entity>/<project>"):
        load_runs(tmp_path)
    with pytest.raises(ValueError, match="wandb:<entity>/<project>"):
        load_runs("wandb:only-a-project")
