"""Finding a sweep file by name (``sweep=objective``) or by path."""

from __future__ import annotations

from pathlib import Path

from lit_illada.config.paths import CONF_DIR, SWEEPS_DIR  # noqa: F401 - re-exported for the driver
from lit_illada.sweeping.errors import SweepConfigError


def find_sweep_file(sweep: str, sweeps_dir: str | Path | None = None) -> Path:
    """``sweep=objective`` names ``<sweeps_dir>/objective.yaml``; a path to a yaml file also works."""
    as_path = Path(sweep)
    if as_path.suffix in (".yaml", ".yml") or len(as_path.parts) > 1:
        if not as_path.is_file():
            raise SweepConfigError(f"sweep={sweep}: no such file")
        return as_path
    folder = Path(sweeps_dir) if sweeps_dir else SWEEPS_DIR
    path = folder / f"{sweep}.yaml"
    if not path.is_file():
        available = sorted(p.stem for p in folder.glob("*.yaml"))
        raise SweepConfigError(
            f"sweep={sweep}: no {path}; available sweeps in {folder}: {', '.join(available) or 'none'}"
        )
    return path
