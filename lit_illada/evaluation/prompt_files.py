"""A prompts file streamed into an output file: read lazily, checked line by line, appended in input
order ``window`` prompts at a time, and resumed after a kill from the lines already written."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from omegaconf import DictConfig
from tqdm import tqdm

from lit_illada.config.errors import ConfigError
from lit_illada.config.outputs import check_output_file
from lit_illada.evaluation.completion import Completer, batches_by_length


def iter_prompts(path: Path) -> Iterator[tuple[int, dict]]:
    """``(line number, row)`` of each non-blank line, read lazily and checked as it is read."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ConfigError(f"prompts_file={path}, line {number}: not JSON ({err.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get("prompt"), str):
                raise ConfigError(f'prompts_file={path}, line {number}: expected {{"prompt": "..."}}')
            yield number, row


def prompts_path(cfg: DictConfig) -> Path | None:
    if (cfg.prompt is None) == (cfg.prompts_file is None):
        raise ConfigError('give exactly one of prompt="..." or prompts_file=<file.jsonl>')
    if cfg.prompts_file is None:
        return None
    path = Path(cfg.prompts_file)
    if not path.is_file():
        raise ConfigError(f"prompts_file={path}: no such file")
    return path


def output_path(cfg: DictConfig, prompts: Path) -> Path:
    """Where the generations go, checked before the model loads: a writable file that is new, empty
    or one this command wrote for these prompts (anything else is refused, never overwritten)."""
    default = prompts.with_suffix(".generations.jsonl")
    output = Path(cfg.output or default)
    if output.resolve() == prompts.resolve():
        raise ConfigError(f"output={output} is the prompts file itself; choose another output=")
    check_output_file(output, "output", replaced=False, example=default.name)
    written_records(output, prompts)
    return output


# What Completer.complete adds to a prompt's row: a line with these is a record generate wrote.
RECORD_KEYS = (
    "completion", "nfe", "seconds", "batch_seconds", "tokens_per_s", "tokens_per_forward", "sampler"
)


def written_records(output: Path, prompts: Path, sampler: str | None = None) -> tuple[int, int]:
    """(records, bytes they span) of the complete generation records at the start of ``output``.

    Refuses a file this command did not write (a line that is not a record), one written for
    other prompts, or (given ``sampler``) with another sampler: appending would mix them. A last
    line without its newline passes only when it is the beginning of the next prompt's record,
    as a kill mid-write leaves it; anything else there is the user's, and is refused.
    """
    if not output.exists():
        return 0, 0
    done, keep = 0, 0
    expected = iter_prompts(prompts)
    with output.open("rb") as handle:
        for line in handle:
            number, source = next(expected, (None, None))
            if not line.endswith(b"\n"):
                if source is not None and _begins_record(line, source):
                    break  # killed mid-write: the caller redoes this prompt
                raise ConfigError(_not_generated(output, done + 1))
            row = _record(line)
            if row is None:
                raise ConfigError(_not_generated(output, done + 1))
            if source is None or row["prompt"] != source["prompt"]:
                raise ConfigError(
                    f"output={output}, line {done + 1} does not match prompts_file={prompts}"
                    f"{f' line {number}' if number else ' (it has fewer prompts)'}: the output belongs to "
                    f"other prompts; delete it or choose another output="
                )
            if sampler is not None and row["sampler"] != sampler:
                raise ConfigError(
                    f"output={output} was written with {row['sampler']}, this command samples with "
                    f"{sampler}; delete it or choose another output= (appending would mix the two)"
                )
            done += 1
            keep += len(line)
    return done, keep


def _record(line: bytes) -> dict | None:
    try:
        row = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    texts = ("prompt", "completion", "sampler")
    return row if isinstance(row, dict) and all(isinstance(row.get(k), str) for k in texts) else None


def _begins_record(partial: bytes, source: dict) -> bool:
    """Whether ``partial`` is how the record of ``source`` starts: the prompt's row as json.dumps
    writes it, up to the first value generation adds (or the whole of that beginning, and more)."""
    marker = "\u0000lit_illada-record\u0000"
    template = json.dumps({**source, **dict.fromkeys(RECORD_KEYS, marker)})
    head = template[: template.index(json.dumps(marker))].encode()
    return head.startswith(partial) or partial.startswith(head)


def _not_generated(output: Path, line: int) -> str:
    return (
        f"output={output} was not written by generate (line {line} is not a generation record); it is "
        f"left untouched: choose another output= (or delete the file to generate into it)"
    )


def resume_point(output: Path, prompts: Path, sampler: str) -> int:
    """How many prompts ``output`` already holds; a half-written last record is cut off, to be redone."""
    done, keep = written_records(output, prompts, sampler)
    if output.exists() and keep < output.stat().st_size:
        with output.open("r+b") as handle:
            handle.truncate(keep)
    return done


def generate_file(cfg: DictConfig, completer: Completer, prompts: Path, output: Path) -> dict:
    """Stream ``prompts`` into ``output`` (appending, in input order), ``window`` at a time."""
    total = 0
    for number, row in iter_prompts(prompts):  # every prompt fits, before anything is written
        completer.encode(row, where=f"prompts_file={prompts}, line {number}: ")
        total += 1
    if total == 0:
        raise ConfigError(f"prompts_file={prompts}: no prompts in the file")
    done = resume_point(output, prompts, repr(completer.sampler))
    if done:
        print(f"{output}: {done} of {total} prompts already generated; resuming", file=sys.stderr)
    output.parent.mkdir(parents=True, exist_ok=True)
    rows = (row for _, row in islice(iter_prompts(prompts), done, None))
    bar = tqdm(
        total=total, initial=done, desc="generating", unit="prompt", disable=total - done < 2, file=sys.stderr
    )
    with output.open("a", encoding="utf-8") as sink, bar:
        while window := list(islice(rows, cfg.window)):
            encoded = [completer.encode(row) for row in window]
            finished: dict[int, dict] = {}
            written = 0
            for batch in batches_by_length(encoded, cfg.batch_size):
                results = completer.complete([window[i] for i in batch], [encoded[i] for i in batch])
                finished.update(zip(batch, results, strict=True))
                while written in finished:  # in input order: only once every earlier row is out
                    sink.write(json.dumps(finished.pop(written)) + "\n")
                    written += 1
                sink.flush()  # a kill loses at most the rows still waiting for an earlier one
                bar.update(len(batch))
    print(f"wrote {total - done} generations to {output} ({total} in all)")
    return {"output": str(output), "total": total, "generated": total - done, "skipped": done}


