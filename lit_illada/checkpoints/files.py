"""Checkpoint files that a kill cannot corrupt, are checked before they are trusted, and load no code.

Plain torch, no Lightning (``load_checkpoint`` imports this); the Lightning side is
``checkpoint_io.AtomicCheckpointIO`` and ``distributed.FSDP2Strategy.save_checkpoint``.

- ``write_atomically``: a file is written under a temporary name in the same folder, fsynced,
  then ``os.replace``d over the target: a reader sees the old checkpoint or the new one, never
  half of one. ``replace_path`` does the same for DCP folders (``trainer=fsdp``), written
  under a temporary name by every rank and renamed into place by rank 0 once all are done.
- ``ensure_space``: refuses a save that the disk cannot hold, before a byte is written.
- ``verify_checkpoint``: a truncated or corrupt checkpoint fails here with the file named:
  a zip checkpoint is checked against its own per-record CRC32s, a DCP folder against the
  sizes its ``.metadata`` promises.
- ``safe_load``: ``torch.load(weights_only=True)``. Everything lit_illada and Lightning put in
  a checkpoint (tensors, dicts, lists, numbers, strings) is on torch's default allow-list;
  tests/test_checkpoint_integrity.py checks that no other global appears.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch.distributed.checkpoint import FileSystemReader

META_FILE = "meta.pt"  # Lightning's non-tensor part of a DCP checkpoint
SPACE_MARGIN = 1.1  # a checkpoint file is its tensors' bytes plus pickle and zip headers
# Test hook, inert unless set: SIGKILL this process halfway through writing the checkpoint of
# that global step, leaving the half-written temporary file behind as a real crash would.
KILL_DURING_SAVE_ENV = "LIT_ILLADA_TEST_KILL_DURING_SAVE_AT_STEP"


class CheckpointError(ValueError):
    """A checkpoint that cannot be trusted: missing parts, truncated, or failing its checksums."""


class CheckpointSpaceError(OSError):
    """Not enough free disk for the next checkpoint; the previous ones are left as they were."""


def free_bytes(path: str | Path) -> int:
    """Free bytes on the filesystem holding ``path`` (tests replace this to simulate a full disk)."""
    return shutil.disk_usage(path).free


def tensor_bytes(obj: Any) -> int:
    """Bytes of every tensor in a nested checkpoint dict (this rank's shards of DTensors)."""
    if isinstance(obj, torch.Tensor):
        if hasattr(obj, "to_local"):  # a DTensor: this rank's shard is what it writes
            obj = obj.to_local()
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(tensor_bytes(value) for value in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(tensor_bytes(value) for value in obj)
    return 0


def space_problem(folder: Path, needed: int, target: Path) -> str | None:
    """Why ``needed`` bytes cannot be written in ``folder`` now, or None when they can."""
    free = free_bytes(folder)
    if free >= needed:
        return None
    return (
        f"not enough disk space to save {target}: it needs about {needed / 2**30:.2f} GiB, "
        f"{free / 2**30:.2f} GiB are free in {folder}. The checkpoints already there are kept "
        f"(resume uses the newest good one). Free some space, lower checkpoint.keep_last, or "
        f"write runs elsewhere (runs_root=)."
    )


def ensure_space(folder: Path, needed: int, target: Path) -> None:
    problem = space_problem(folder, needed, target)
    if problem is not None:
        raise CheckpointSpaceError(problem)


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (the directory entry itself is data)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_name(path: Path) -> Path:
    """Where ``path`` is written before it is renamed into place: same folder, hidden, same for
    every rank (a DCP folder is written by all of them)."""
    return path.with_name(f".{path.name}.tmp")


def is_temporary(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith((".tmp", ".old"))


def kill_during_save_hook(step: int, written: Path) -> None:
    """The test hook (see ``KILL_DURING_SAVE_ENV``): does nothing unless the variable names ``step``."""
    if os.environ.get(KILL_DURING_SAVE_ENV) != str(step):
        return
    if written.is_file():
        with written.open("r+b") as handle:
            handle.truncate(written.stat().st_size // 2)
    os.kill(os.getpid(), signal.SIGKILL)


def write_atomically(checkpoint: dict[str, Any], path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, fsync, rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ensure_space(path.parent, int(tensor_bytes(checkpoint) * SPACE_MARGIN), path)
    tmp = temporary_name(path)
    try:
        torch.save(checkpoint, tmp)
        kill_during_save_hook(checkpoint.get("global_step", -1), tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        replace_path(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        if err.errno == errno.ENOSPC:  # the estimate was short
            raise CheckpointSpaceError(
                f"the disk filled up while saving {path} ({err}); the checkpoints already there are kept"
            ) from err
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def replace_path(tmp: Path, path: Path) -> None:
    """Put the complete ``tmp`` (file or folder) where ``path`` is, as atomically as the OS allows.

    A file replaces in one rename. A folder cannot replace a folder in one rename: the old one
    is moved aside first, so a kill between the two renames leaves ``path`` missing for a
    moment, never half-written; resume then falls back to the previous step checkpoint.
    """
    if path.is_dir() and not path.is_symlink():
        old = path.with_name(f".{path.name}.old")
        remove_path(old)
        os.replace(path, old)
        os.replace(tmp, path)
        fsync_dir(path.parent)
        remove_path(old)
        return
    os.replace(tmp, path)
    fsync_dir(path.parent)


def remove_path(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def fsync_tree(folder: Path) -> None:
    for item in folder.iterdir():
        if item.is_file():
            fd = os.open(item, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    fsync_dir(folder)


def safe_load(path: str | Path, map_location: Any = "cpu", mmap: bool = False) -> Any:
    """``torch.load`` that never runs pickled code; a file that cannot be read is named in the error."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as err:  # truncated file, not a checkpoint, or a global outside the allow-list
        reason = unreadable_reason(path, err)
        raise CheckpointError(f"{path}: cannot be read as a checkpoint ({reason})") from err


def unreadable_reason(path: str | Path, err: Exception) -> str:
    """Why torch.load failed, in words where the file itself says it (torch's own message is
    about its internals, e.g. mmap and zip serialization, for a plain text file)."""
    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        return "an empty file, 0 bytes"
    if path.is_file() and not zipfile.is_zipfile(path):
        with path.open("rb") as handle:
            head = handle.read(512)
        text = head and all(32 <= b < 127 or b in b"\t\r\n" for b in head)
        kind = "a text file" if text else "another kind of file"
        return f"{kind}, not the zip archive torch.save writes"
    return f"{type(err).__name__}: {err}"


def verify_checkpoint(path: str | Path) -> None:
    """Raise ``CheckpointError`` naming ``path`` unless it is a complete, intact checkpoint."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: does not exist" + (" (a dangling link)" if path.is_symlink() else ""))
    if path.is_dir():
        _verify_sharded(path)
    else:
        _verify_zip(path)


def _verify_zip(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()  # reads every record and checks its CRC32
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise CheckpointError(f"{path}: truncated or not a checkpoint ({err})") from err
    if bad is not None:
        raise CheckpointError(f"{path}: corrupt, record {bad!r} fails its CRC32 check")


def _verify_sharded(path: Path) -> None:

    if not (path / ".metadata").is_file() or not (path / META_FILE).is_file():
        raise CheckpointError(f"{path}: an incomplete sharded checkpoint (no .metadata or {META_FILE})")
    _verify_zip(path / META_FILE)
    try:
        metadata = FileSystemReader(str(path)).read_metadata()
    except Exception as err:
        raise CheckpointError(f"{path}: unreadable .metadata ({type(err).__name__}: {err})") from err
    needed: dict[str, int] = {}
    for info in (metadata.storage_data or {}).values():
        needed[info.relative_path] = max(needed.get(info.relative_path, 0), info.offset + info.length)
    for name, size in needed.items():
        shard = path / name
        have = shard.stat().st_size if shard.is_file() else -1
        if have < size:
            state = "missing" if have < 0 else f"{have} of {size} bytes"
            raise CheckpointError(f"{path}: shard {name} is truncated ({state})")


def checkpoint_step(path: Path) -> int | None:
    """n for ``step-<n>.ckpt``, else None."""
    suffix = path.name.removeprefix("step-").removesuffix(".ckpt")
    return int(suffix) if path.name.startswith("step-") and suffix.isdigit() else None


def step_checkpoints(folder: Path) -> list[Path]:
    """``step-<n>.ckpt`` files or folders in ``folder``, newest first."""
    found = [p for p in folder.glob("step-*.ckpt") if checkpoint_step(p) is not None]
    return sorted(found, key=checkpoint_step, reverse=True)


def newest_good_checkpoint(folder: str | Path, report=print) -> Path | None:
    """The checkpoint a re-run resumes from: ``last.ckpt``, else the newest ``step-<n>.ckpt``
    that verifies. Each one passed over is reported with its reason and the fallback."""
    folder = Path(folder)
    last = folder / "last.ckpt"
    # last.ckpt is a link to the newest step-<n>.ckpt: checked (and named) as that one.
    candidates = [last.resolve()] if last.exists() or last.is_symlink() else []
    candidates += [p for p in step_checkpoints(folder) if p.resolve() not in candidates]
    rejected = []
    for path in candidates:
        try:
            verify_checkpoint(path)
        except CheckpointError as err:
            rejected.append(str(err))
            continue
        for reason in rejected:
            report(f"warning: {reason}; resuming from {path} instead")
        return path
    for reason in rejected:
        report(f"warning: {reason}; no older good checkpoint, starting from scratch")
    return None


def link_last(target: Path) -> Path:
    """Point ``last.ckpt`` beside ``target`` at it: a relative symlink swapped in with one rename,
    so ``last.ckpt`` always names a complete checkpoint."""
    last = target.with_name("last.ckpt")
    tmp = temporary_name(last)
    remove_path(tmp)
    os.symlink(target.name, tmp)
    if last.is_dir() and not last.is_symlink():
        remove_path(last)  # a DCP last.ckpt/ written before step checkpoints existed
    os.replace(tmp, last)
    fsync_dir(last.parent)
    return last


def clean_temporaries(folder: Path) -> list[Path]:
    """Remove what killed saves left in ``folder``: half-written ``.<name>.tmp`` files, and
    ``.<name>.old`` folders (put back when the kill fell between ``replace_path``'s renames)."""
    removed = []
    for item in folder.glob(".*"):
        if not is_temporary(item):
            continue
        original = item.with_name(item.name[1:].rsplit(".", 1)[0])
        if item.name.endswith(".old") and not original.exists():
            os.replace(item, original)
            continue
        remove_path(item)
        removed.append(item)
    return removed


def stored_bytes(path: Path) -> int:
    """Size on disk of a checkpoint file or folder."""
    path = path.resolve()
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0


def sharded_checkpoint(path: str | Path) -> bool:
    """True for a DCP folder as ``trainer=fsdp`` writes it (``last.ckpt/`` with ``.metadata``)."""
    return (Path(path) / ".metadata").is_file()
