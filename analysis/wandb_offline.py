"""Offline W&B runs (``wandb/offline-run-*/run-<id>.wandb``) read back without a server.

The ``.wandb`` file is W&B's transaction log: a 7-byte header (``:W&B``, magic 0xBEE1,
version 0), then LevelDB-log framing (32 KiB blocks; each chunk has a 7-byte header of
CRC32C, length and type FULL/FIRST/MIDDLE/LAST) around serialized ``Record`` protobufs.
Recent wandb (0.31 here) reads these files in its Go core and ships no Python reader (the
old ``wandb.sdk.internal.datastore`` is gone), so the framing is undone here; every record
is parsed by the SDK's own protobuf classes (``wandb.proto.wandb_internal_pb2.Record``).
CRCs are not checked: a truncated tail (a run still writing, or killed) ends the read
instead of failing it.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis.wandb_runs import WandbRun

HEADER = struct.Struct("<4sHB")  # ":W&B", 0xBEE1, version
CHUNK = struct.Struct("<IHB")  # crc32c, length, type
BLOCK = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path: str | Path) -> Iterator[Any]:
    """Every ``Record`` protobuf of a ``.wandb`` file, in order."""
    from wandb.proto import wandb_internal_pb2  # noqa: PLC0415 - slow import, only when asked

    data = Path(path).read_bytes()
    magic, ident, version = HEADER.unpack_from(data) if len(data) >= HEADER.size else (b"", 0, 0)
    if magic != b":W&B" or ident != 0xBEE1 or version != 0:
        raise ValueError(f"{path}: not a W&B transaction log (header {data[:7]!r})")
    pos, pending = HEADER.size, b""
    while pos + CHUNK.size <= len(data):
        if BLOCK - pos % BLOCK < CHUNK.size:  # a block's tail too short for a header is padding
            pos += BLOCK - pos % BLOCK
            continue
        _, length, kind = CHUNK.unpack_from(data, pos)
        pos += CHUNK.size
        if kind == 0 and length == 0:  # zero fill up to the next block
            pos += BLOCK - pos % BLOCK if pos % BLOCK else 0
            continue
        if kind not in (FULL, FIRST, MIDDLE, LAST) or pos + length > len(data):
            return  # torn write at the end of a run that did not finish
        chunk = data[pos : pos + length]
        pos += length
        pending = chunk if kind in (FULL, FIRST) else pending + chunk
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def _key(item: Any) -> str | None:
    """The item's key; None for a part of a nested value (a table's or an image's fields)."""
    if len(item.nested_key) > 1:
        return None
    return item.nested_key[0] if item.nested_key else item.key


def _history_value(item: Any) -> Any:
    # The typed `value` oneof is newer wandb's; older records hold value_json alone.
    kind = item.WhichOneof("value") if "value" in item.DESCRIPTOR.oneofs_by_name else None
    if kind is None:
        return json.loads(item.value_json) if item.value_json else None
    if kind == "json":
        return json.loads(item.json)
    return None if kind == "none" else getattr(item, kind)


def _scalar(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass
class OfflineRun:
    """What the W&B API would show for the run: config, summary, history rows, metadata."""

    path: Path
    id: str = ""
    name: str = ""
    project: str = ""
    group: str = ""
    job_type: str = ""
    tags: list[str] = field(default_factory=list)
    state: str = "running"  # "finished" / "failed" once an exit record is written
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)


def read_offline_run(path: str | Path) -> OfflineRun:
    """One ``.wandb`` file (or an ``offline-run-*`` folder holding one) as an OfflineRun."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.wandb"))
        if not files:
            raise FileNotFoundError(f"{path}: no .wandb file in this folder")
        path = files[0]
    run = OfflineRun(path=path)
    for record in read_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            meta = record.run
            run.id, run.name, run.project = meta.run_id, meta.display_name, meta.project
            run.group, run.job_type, run.tags = meta.run_group, meta.job_type, list(meta.tags)
            _apply(run.config, meta.config.update, meta.config.remove)
        elif kind == "config":
            _apply(run.config, record.config.update, record.config.remove)
        elif kind == "summary":
            _apply(run.summary, record.summary.update, record.summary.remove)
        elif kind == "history":
            row = {_key(item): _history_value(item) for item in record.history.item}
            run.history.append({k: v for k, v in row.items() if k and _scalar(v)})  # no tables, media
        elif kind == "exit":
            run.state = "finished" if record.exit.exit_code == 0 else "failed"
    run.config.pop("_wandb", None)
    run.summary = {k: v for k, v in run.summary.items() if not k.startswith("_") and _scalar(v)}
    return run


def _apply(target: dict, updates: Any, removes: Any) -> None:
    for item in updates:
        if (key := _key(item)) is not None:
            target[key] = json.loads(item.value_json)
    for item in removes:
        target.pop(_key(item), None)


def find_offline_runs(root: str | Path) -> list[Path]:
    """Every ``.wandb`` file under ``root`` (``latest-run`` links are not followed twice)."""
    return sorted(p for p in Path(root).rglob("*.wandb") if "latest-run" not in p.parts)


def merged_runs(root: str | Path) -> list[OfflineRun]:
    """The offline runs under ``root``, one per W&B run id: a resumed run writes a new
    ``offline-run-<time>-<id>`` folder each time, so its pieces are joined in time order."""
    runs: dict[str, OfflineRun] = {}
    for path in find_offline_runs(root):  # folder names start with the time: sorted = in order
        piece = read_offline_run(path)
        run = runs.get(piece.id)
        if run is None:
            runs[piece.id] = piece
            continue
        run.config.update(piece.config)
        run.summary.update(piece.summary)
        run.history.extend(piece.history)
        run.state, run.tags = piece.state, piece.tags or run.tags
    return list(runs.values())


def offline_wandb_runs(root: str | Path):
    """The offline runs under ``root`` as WandbRun, each with a history reference."""

    root = Path(root).resolve()
    return [
        WandbRun(
            id=run.id,
            name=run.name,
            config=run.config,
            summary=run.summary,
            history=f"wandb-offline:{root}#{run.id}",
            job_type=run.job_type,
            group=run.group,
            tags=run.tags,
            state=run.state,
        )
        for run in merged_runs(root)
    ]


def offline_history(reference: str) -> list[dict]:
    """History rows of ``<root>#<run id>`` (the part after ``wandb-offline:``)."""
    root, _, run_id = reference.rpartition("#")
    for run in merged_runs(root):
        if run.id == run_id:
            return run.history
    raise FileNotFoundError(f"no offline W&B run {run_id!r} under {root}")
