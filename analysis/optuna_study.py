"""An Optuna study (the sweep driver's, or any) as RunData: one per trial, joined with the
trial's run record (user attr ``run_dir``) where it exists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analysis.local_runs import local_run
from analysis.records import is_run_dir
from analysis.rows import RunData

JOURNAL_PREFIX = "journal://"  # the sweep driver's storage=journal:///<file> (lit_illada/sweeping/study.py)


def open_study(storage: str, study_name: str | None = None, default: str | None = None) -> Any:
    """The named study; unnamed, ``default`` if the storage has it, else its only study.

    ``storage`` is any URL the sweep driver writes to: ``sqlite:///<file>``, a database URL, or
    ``journal:///<file>`` (Optuna's journal file).
    """
    import optuna  # noqa: PLC0415 - slow import, only when asked

    url = storage
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        # Optuna would create an empty database here; a typo should fail instead.
        raise FileNotFoundError(f"{url}: no such SQLite file")
    if url.startswith(JOURNAL_PREFIX):
        path = Path(url.removeprefix(JOURNAL_PREFIX))
        if not path.is_file():  # the journal backend would create an empty one
            raise FileNotFoundError(f"{url}: no such journal file")
        from optuna.storages.journal import JournalFileBackend  # noqa: PLC0415

        storage = optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    names = optuna.get_all_study_names(storage=storage)
    if study_name is None and default in names:
        study_name = default
    if study_name is None:
        if len(names) != 1:
            raise ValueError(f"{url} holds studies {names}: name one as optuna:<storage>#<study>")
        study_name = names[0]
    elif study_name not in names:
        raise ValueError(f"{url} has no study {study_name!r}; it has {names}")
    return optuna.load_study(study_name=study_name, storage=storage)


def objective_names(study: Any) -> list[str]:
    """The sweep file's objective metrics, stored by the driver; else value / values_<i>."""
    stored = (study.user_attrs.get("sweep") or {}).get("objectives") or []
    if len(stored) == len(study.directions):
        return [metric for metric, _direction in stored]
    return ["value"] if len(study.directions) == 1 else [f"values_{i}" for i in range(len(study.directions))]


def _trial_run_dir(trial: Any, sweep_dir: Path | None) -> Path | None:
    recorded = trial.user_attrs.get("run_dir")
    if not recorded:
        return None
    path = Path(recorded)
    if not is_run_dir(path) and sweep_dir is not None:  # the sweep folder was moved or copied
        path = sweep_dir / "runs" / path.name
    return path if is_run_dir(path) else None


def study_runs(study: Any, sweep_dir: Path | None = None) -> list[RunData]:
    names = objective_names(study)
    runs = []
    for trial in study.trials:
        run_dir = _trial_run_dir(trial, sweep_dir)
        run = (
            local_run(run_dir)
            if run_dir
            else RunData(name=f"{study.study_name}-t{trial.number}", source="optuna")
        )
        run.source = "optuna"
        values = dict(zip(names, trial.values, strict=True)) if trial.values else {}
        run.extra = {
            **run.extra,
            "study": study.study_name,
            "trial": trial.number,
            "state": trial.state.name,
            "duration_s": trial.duration.total_seconds() if trial.duration else None,
            **trial.params,  # the sweep's choices (Hydra override keys: noise, sampler.steps, ...)
            **values,  # what Optuna was told, e.g. the best epoch's score for sft_epochs
            "run_dir": str(run_dir) if run_dir else trial.user_attrs.get("run_dir"),
        }
        runs.append(run)
    return runs
