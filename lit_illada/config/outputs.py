"""Where a command writes, checked before its work starts: results are never computed only to be
lost on a directory given as a file, a file in the way of a folder, or a folder that cannot be
written (and no stray temporary file is left behind).

Writability is probed by creating and removing a temporary file, not by ``os.access``: root
passes every permission check, yet a read-only filesystem still refuses the write. Nothing is
created for a folder that does not exist yet: its nearest existing parent is probed instead.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from lit_illada.config.errors import ConfigError


def check_output_file(
    path: str | Path, key: str, *, replaced: bool = True, example: str = "results.json"
) -> Path:
    """``path`` as a file this command can write; ``key`` names the setting (``output``, ``--out``).

    ``replaced``: the file is written through a temporary file beside it and renamed (its folder
    must be writable); otherwise it is appended to in place (the file itself must be).
    ``example``: a file name to suggest when ``path`` is a directory.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(
            f"{_given(key, path)} is a directory; give a file path, e.g. {_given(key, path / example)}"
        )
    if path.exists() and not replaced:
        try:
            with path.open("ab"):  # opening for append changes neither the content nor the mtime
                pass
        except OSError as err:
            raise ConfigError(
                f"{_given(key, path)}: cannot write to it ({err.strerror}); choose a writable {_fix(key)}"
            ) from None
        return path
    check_output_folder(path.parent, key, given=path)
    return path


def check_output_folder(folder: str | Path, key: str, *, given: str | Path | None = None) -> Path:
    """``folder`` as a folder this command can create (when missing) and write files into."""
    folder = Path(folder)
    given = folder if given is None else given
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(
            f"{_given(key, given)}: {existing} is a file, not a folder; choose another {_fix(key)}"
        )
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".write-check-"):
            pass
    except OSError as err:
        raise ConfigError(
            f"{_given(key, given)}: cannot write into {existing} ({err.strerror}); "
            f"choose a writable {_fix(key)}"
        ) from None
    return folder


def _given(key: str, path: Path | str) -> str:
    """The setting as the user typed it: ``output=x`` (Hydra) or ``--out x`` (argparse)."""
    return f"{key} {path}" if key.startswith("-") else f"{key}={path}"


def _fix(key: str) -> str:
    return f"{key} <path>" if key.startswith("-") else f"{key}=<path>"

