"""``load_runs`` / ``load_epochs`` / ``load_history``: runs from any source as one DataFrame.

Sources (a string or a Path):

    runs/  or  runs/<name>           local run records (a folder of them, or one)
    <sweeps_root>/<study>/           a sweep folder (holds study.db): its Optuna study
    wandb-offline:<dir>              the offline W&B runs under <dir> (wandb/offline-run-*/)
    wandb:<entity>/<project>         the W&B API; ``filters`` is a MongoDB-style dict for it
    optuna:<storage_url>[#<study>]   an Optuna study, e.g. optuna:sqlite:///runs/sweeps/objective/study.db

Columns of both tables: ``run``, ``source``, ``epoch``; the components, each the conf/ file
that chose it as the run recorded it (``config["choices"]``, see lit_illada/config/choices.py):
``noise``, ``weighting``, ``masking``, ``objective``, ``sampler``, ``model``, ``data``, ... and
the evaluation's ``sampler`` and ``scoring``; ``attention`` (mha, or gqa<n_kv_heads>: the W&B
tag's spelling), ``stage``, ``seed``; summary metrics (``val/nll``, ``best/val/nll``,
``train/tokens_per_s``, ...); evaluation metrics as ``<task>/<metric>``
(``docstring_to_body/edit_similarity``); the training config flattened with dots
(``model.n_kv_heads``, ``optimizer.lr``); the evaluate config under ``eval.``
(``eval.sampler.steps``); source extras (``wandb.group``, ``wandb.tags``; for
a study ``trial``, ``state``, each param by its override key, each objective by its metric
name); and ``history``, a reference that ``load_history`` turns into the per-step metrics.

``load_runs`` gives one row per run with its final evaluation (results.json); ``load_epochs``
gives one row per (run, SFT epoch) from results/epoch-<k>.json (or W&B eval runs with an
epoch). sampler/scoring/objective of a row are those its evaluation used, when it has one.

``filters``: for ``wandb:`` sources it goes to ``wandb.Api().runs(path, filters=...)``; for
the others it is ``{column: value or [values]}`` kept rows must match. Optuna sources keep
COMPLETE trials unless the filters name ``state``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from analysis.local_runs import local_run, local_runs
from analysis.optuna_study import open_study, study_runs
from analysis.records import load_metrics
from analysis.rows import RunData, epoch_rows, runs_rows
from analysis.wandb_api import api_history, api_runs
from analysis.wandb_offline import offline_history, offline_wandb_runs
from analysis.wandb_runs import to_run_data

STUDY_DB = "study.db"  # lit_illada.sweeping.study.default_storage_url

ACCEPTED = (
    "runs/ or runs/<name> (run records), a sweep folder holding study.db, wandb-offline:<dir>, "
    "wandb:<entity>/<project>, optuna:<storage_url>[#<study>]"
)


def read_source(
    source: str | Path, filters: dict | None = None, api: Any = None
) -> tuple[list[RunData], dict]:
    """The runs of ``source`` and the filters still to apply to the table."""
    text = str(source)
    filters = dict(filters or {})
    if text.startswith("wandb:"):

        path = text.removeprefix("wandb:")
        if path.count("/") != 1:
            raise ValueError(f"source={text!r}: expected wandb:<entity>/<project>")
        return to_run_data(api_runs(path, filters, api), "wandb"), {}  # the server filtered
    if text.startswith("wandb-offline:"):

        folder = Path(text.removeprefix("wandb-offline:"))
        if not folder.is_dir():
            raise FileNotFoundError(f"source={text!r}: no such folder")
        return to_run_data(offline_wandb_runs(folder), "wandb-offline"), filters
    if text.startswith("optuna:"):
        storage, _, study = text.removeprefix("optuna:").partition("#")
        return _study(storage, study or None, None), {"state": "COMPLETE", **filters}
    path = Path(text)
    if (path / STUDY_DB).is_file():
        storage = f"sqlite:///{(path / STUDY_DB).resolve()}"
        return _study(storage, None, path), {"state": "COMPLETE", **filters}
    if path.is_dir():

        runs = local_runs(path)
        if runs:
            return runs, filters
    raise FileNotFoundError(
        f"source={text!r}: no run records, study.db or W&B runs there; accepted: {ACCEPTED}"
    )


def _study(storage: str, name: str | None, sweep_dir: Path | None) -> list[RunData]:

    # The driver names a sweep folder after its study.
    return study_runs(open_study(storage, name, default=sweep_dir.name if sweep_dir else None), sweep_dir)


def apply_filters(frame: pd.DataFrame, filters: dict) -> pd.DataFrame:
    if frame.empty:  # e.g. no run has per-epoch evaluations: nothing to filter, no columns to check
        return frame
    for column, wanted in filters.items():
        if column not in frame:
            raise KeyError(f"filters: no column {column!r}; columns are {list(frame.columns)}")
        values = list(wanted) if isinstance(wanted, (list, tuple, set)) else [wanted]
        frame = frame[frame[column].isin(values)]
    return frame.reset_index(drop=True)


def _frame(rows: list[dict], filters: dict) -> pd.DataFrame:
    frame = (
        pd.DataFrame.from_records(rows)
        if rows
        else pd.DataFrame(columns=["run", "source", "epoch", "history"])
    )
    return apply_filters(frame, filters)


def load_runs(source: str | Path, filters: dict | None = None, *, api: Any = None) -> pd.DataFrame:
    """One row per run (see the module docstring). ``api`` replaces ``wandb.Api()`` (tests)."""
    runs, remaining = read_source(source, filters, api)
    return _frame(runs_rows(runs), remaining)


def load_epochs(source: str | Path, filters: dict | None = None, *, api: Any = None) -> pd.DataFrame:
    """One row per (run, SFT epoch); runs without per-epoch evaluations give none."""
    runs, remaining = read_source(source, filters, api)
    return _frame(epoch_rows(runs), remaining)


# W&B bookkeeping columns; Lightning's global step is the step (as metrics.csv's step column).
_BOOKKEEPING = ("epoch", "trainer/global_step")


def history_frame(rows: list[dict]) -> pd.DataFrame:
    """W&B history rows as metrics.csv would hold them: a ``step`` column, one row per step."""
    frame = pd.DataFrame.from_records(rows)
    if frame.empty:
        return pd.DataFrame(columns=["step"])
    step = frame["trainer/global_step"] if "trainer/global_step" in frame else frame["_step"]
    metrics = frame[[c for c in frame.columns if not c.startswith("_") and c not in _BOOKKEEPING]]
    metrics = metrics.assign(step=step).dropna(subset=["step"])
    metrics = metrics.dropna(how="all", subset=[c for c in metrics.columns if c != "step"])
    merged = metrics.groupby("step", as_index=False).first().sort_values("step")
    return merged.astype({"step": int}).reset_index(drop=True)


def load_history(run: Any, *, api: Any = None) -> pd.DataFrame:
    """Per-step metrics of a run: a row of load_runs, its ``history`` reference, or a run folder.

    Local records read metrics.csv; offline W&B runs their .wandb file; API runs use
    ``run.scan_history()`` (every row, not the sampled ``history()``).
    """

    reference = run.get("history") if isinstance(run, (dict, pd.Series)) else str(run)
    name = run.get("run") if isinstance(run, (dict, pd.Series)) else reference
    if not isinstance(reference, str) or not reference:
        raise ValueError(f"run {name}: no per-step history was recorded (logger=none?)")
    kind, _, rest = reference.partition(":")
    if kind == "csv":
        return load_metrics(Path(rest).parent)
    if kind == "wandb-offline":

        return history_frame(offline_history(rest))
    if kind == "wandb":

        return history_frame(api_history(rest, api))
    if Path(reference).is_dir():  # a run folder given directly

        return load_history({"run": reference, "history": local_run(reference).history}, api=api)
    raise ValueError(
        f"history={reference!r}: expected csv:<file>, wandb-offline:<dir>#<id>, wandb:<path> or a run folder"
    )
