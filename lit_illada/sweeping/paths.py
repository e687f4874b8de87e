"""Where the Hydra config tree and the sweep files live, installed or in a source checkout.

This mirrors ``lit_illada.builder.CONF_DIR`` without importing it: builder pulls in torch and
Lightning (seconds of start-up, and memory) that the driver never needs, since every trial
runs in its own subprocess.
"""

from __future__ import annotations

from pathlib import Path

from lit_illada.sweeping.errors import SweepConfigError

_PACKAGE = Path(__file__).resolve().parent.parent


def _shipped(name: str) -> Path:
    """``lit_illada/<name>`` when installed, else ``<checkout>/<name>`` beside the package."""
    inside = _PACKAGE / name
    return inside if inside.is_dir() else _PACKAGE.parent / name


CONF_DIR = _shipped("conf")
SWEEPS_DIR = _shipped("sweeps")


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
