"""Runs of a W&B project through the public API (``wandb.Api()``).

``api`` may be any object with ``runs(path, filters=...)`` and ``run(path)`` returning objects
shaped like ``wandb.apis.public.Run``: the tests pass a fake fed by recorded responses,
since no W&B server can be reached from them.
"""

from __future__ import annotations

from typing import Any

from analysis.wandb_runs import WandbRun


def default_api() -> Any:
    import wandb  # noqa: PLC0415 - slow import, only when asked

    return wandb.Api()


def api_runs(path: str, filters: dict | None = None, api: Any = None) -> list[WandbRun]:
    """Every run of ``<entity>/<project>`` matching the MongoDB-style ``filters``."""
    api = api or default_api()
    return [
        WandbRun(
            id=run.id,
            name=run.name,
            config=dict(run.config),
            summary=dict(run.summary_metrics),
            history=f"wandb:{path}/{run.id}",
            job_type=run.job_type or "",
            group=run.group or "",
            tags=list(run.tags or []),
            state=run.state or "",
        )
        for run in api.runs(path, filters=filters)
    ]


def api_history(run_path: str, api: Any = None) -> list[dict]:
    """Every logged row of ``<entity>/<project>/<run id>``: scan_history, not the sampled history()."""
    api = api or default_api()
    return list(api.run(run_path).scan_history())
