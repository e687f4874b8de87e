"""Run records on disk as RunData: config.yaml, summary.json, metrics.csv, results.json,
results/epoch-<k>.json, and the offline W&B run when the CSV files are missing."""

from __future__ import annotations

from pathlib import Path

from analysis.records import (
    checkpoint_run_dir,
    is_run_dir,
    read_config,
    read_epoch_results,
    read_json,
    read_results,
)
from analysis.rows import RunData
from analysis.wandb_runs import clean_summary


def _trained_wandb_run(run_dir: Path):
    """The run's own offline W&B training run, if it has one (evaluations log eval runs too)."""
    if not (run_dir / "wandb").is_dir():
        return None
    from analysis.wandb_offline import offline_wandb_runs  # noqa: PLC0415 - imports the wandb protobufs

    trained = [run for run in offline_wandb_runs(run_dir / "wandb") if run.job_type != "eval"]
    return trained[-1] if trained else None


def _checkpoint_config(results: dict | None, run_dir: Path) -> dict | None:
    """An evaluation-only folder (an evaluate sweep's trial) borrows its checkpoint's config."""
    if not results or not results.get("ckpt"):
        return None
    owner = checkpoint_run_dir(results["ckpt"])
    candidates = [owner] if owner.is_absolute() else [Path.cwd() / owner, run_dir / owner]
    return next((config for path in candidates if (config := read_config(path)) is not None), None)


def local_run(run_dir: str | Path) -> RunData:

    run_dir = Path(run_dir).resolve()
    results = read_results(run_dir / "results.json")
    run = RunData(
        name=run_dir.name,
        source="local",
        config=read_config(run_dir) or _checkpoint_config(results, run_dir) or {},
        summary=read_json(run_dir / "summary.json") or {},
        results=results,
        epochs=read_epoch_results(run_dir),
    )
    if (run_dir / "metrics.csv").is_file():
        run.history = f"csv:{run_dir / 'metrics.csv'}"
    # logger=wandb with logger.csv=false: the offline W&B run is the only per-step record.
    if run.history is None or not run.config or not run.summary:
        wandb_run = _trained_wandb_run(run_dir)
        if wandb_run is not None:
            run.history = run.history or wandb_run.history
            run.config = run.config or wandb_run.config
            run.summary = run.summary or clean_summary(wandb_run.summary)
    return run


def local_runs(path: str | Path) -> list[RunData]:
    """One run record, or every run record directly inside a folder (``runs/``)."""
    path = Path(path)
    if is_run_dir(path):
        return [local_run(path)]
    return [local_run(child) for child in sorted(path.iterdir()) if is_run_dir(child)]
