"""Runs of a W&B project through the public API (``wandb.Api()``).

``api`` may be any object with ``runs(path, filters=...)`` and ``run(path)`` returning objects
shaped like ``wandb.apis.public.Run``: the tests pass a fake fed by recorded responses,
since no W&B server can be reached from them.
"""

from __future__ import annotations

from typing import Any

from analysis.wandb_runs import WandbRun

LOCAL_SOURCES = "runs/ (run records), a sweep folder, or wandb-offline:<dir> (offline W&B runs)"


def default_api(source: str) -> Any:
    """``wandb.Api()``; without credentials, one line that says how to log in or read runs locally."""
    import wandb  # noqa: PLC0415 - slow import, only when asked

    try:
        return wandb.Api()
    except (wandb.errors.UsageError, wandb.errors.AuthenticationError) as err:
        raise ValueError(
            f"source={source!r}: W&B needs an API key to read runs ({err}); run `wandb login` "
            f"(or set WANDB_API_KEY), or use a local source: {LOCAL_SOURCES}"
        ) from None
    except wandb.errors.CommError as err:
        raise ValueError(
            f"source={source!r}: cannot reach the W&B server ({err}); check the network, or use a "
            f"local source: {LOCAL_SOURCES}"
        ) from None


def api_runs(path: str, filters: dict | None = None, api: Any = None) -> list[WandbRun]:
    """Every run of ``<entity>/<project>`` matching the MongoDB-style ``filters``."""
    api = api or default_api(f"wandb:{path}")
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
    api = api or default_api(f"wandb:{run_path}")
    return list(api.run(run_path).scan_history())
