"""Generation entry point.

    python -m lit_illada.generate ckpt=runs/<name> prompt="def add(a, b):" sampler=threshold
    python -m lit_illada.generate ckpt=runs/<name> prompts_file=prompts.jsonl output=out.jsonl

Prints each completion with a stats line (NFE, seconds, tokens/s); with ``prompts_file``
writes one JSON line per prompt, in input order. Prompts of equal token length share a
batch, because the samplers take rectangular (B, Lp) prompts.

A prompts file is streamed: ``window`` prompts at a time are read, batched by length and
appended to ``output`` as soon as every earlier line is written, so memory does not grow with
the file. Re-running the same command resumes: the prompts already in ``output`` (line i is
prompt i) are skipped, and a half-written last line is dropped and redone. At temperature 0 a
completion depends only on its prompt (up to float rounding across batch shapes); at
temperature > 0 the resumed prompts draw from a fresh ``seed`` sequence.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig
from tqdm import tqdm

from lit_illada.builder import CONF_DIR, build_sampler
from lit_illada.checkpoint import LoadedCheckpoint, load_checkpoint
from lit_illada.config_checks import ConfigError, exit_on_bad_input, positive_int
from lit_illada.override_errors import run_cli


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
    output = Path(cfg.output or prompts.with_suffix(".generations.jsonl"))
    if output.resolve() == prompts.resolve():
        raise ConfigError(f"output={output} is the prompts file itself; choose another output=")
    return output


def encode_prompt(loaded: LoadedCheckpoint, text: str, add_bos: bool) -> list[int]:
    ids = loaded.tokenizer.encode(text)
    return [loaded.tokenizer.bos_id, *ids] if add_bos else ids


def wants_bos(cfg: DictConfig, loaded: LoadedCheckpoint) -> bool:
    if cfg.add_bos == "auto":
        return loaded.run_config.get("stage_name") == "sft"
    return bool(cfg.add_bos)


def check_prompt(ids: list[int], text: str, gen_length: int, limit: int, where: str = "") -> None:
    if not ids:
        raise ConfigError(f"{where}prompt {text!r} is empty after tokenization")
    if len(ids) + gen_length > limit:
        raise ConfigError(
            f"{where}prompt of {len(ids)} tokens + sampler.gen_length={gen_length} exceeds the "
            f"model's max_seq_len={limit}; shorten the prompt or lower sampler.gen_length"
        )


def batches_by_length(encoded: list[list[int]], batch_size: int) -> list[list[int]]:
    """Indices grouped by prompt length, each group cut into batches of ``batch_size``."""
    groups: dict[int, list[int]] = defaultdict(list)
    for index, ids in enumerate(encoded):
        groups[len(ids)].append(index)
    return [
        members[i : i + batch_size] for members in groups.values() for i in range(0, len(members), batch_size)
    ]


class Completer:
    """The checkpoint, sampler and random generator that every batch of a command shares."""

    def __init__(self, cfg: DictConfig, loaded: LoadedCheckpoint, device: torch.device) -> None:
        self.loaded = loaded
        self.sampler = build_sampler(cfg, loaded.tokenizer)
        self.add_bos = wants_bos(cfg, loaded)
        self.limit = loaded.net.config.max_seq_len
        self.device = device
        self.random = torch.Generator(device).manual_seed(cfg.seed)

    def encode(self, row: dict, where: str = "") -> list[int]:
        ids = encode_prompt(self.loaded, row["prompt"], self.add_bos)
        check_prompt(ids, row["prompt"], self.sampler.gen_length, self.limit, where)
        return ids

    def complete(self, rows: list[dict], encoded: list[list[int]]) -> list[dict]:
        """``rows`` (of equal token length) with their completion and the sampling stats."""
        prompt = torch.tensor(encoded, device=self.device)
        with torch.no_grad():
            out = self.loaded.objective.generate(self.loaded.net, prompt, self.sampler, self.random)
        return [
            {
                **row,
                "completion": self.loaded.tokenizer.decode(out.generated[i].tolist()),
                "nfe": out.nfe,
                "seconds": round(out.seconds / len(rows), 4),
                "batch_seconds": round(out.seconds, 4),
                "tokens_per_s": round(out.tokens_per_second, 2),
                "tokens_per_forward": round(out.tokens_per_forward, 3),
                "sampler": repr(self.sampler),
            }
            for i, row in enumerate(rows)
        ]


def resume_point(output: Path, prompts: Path, sampler: str) -> int:
    """How many prompts ``output`` already holds. Drops a half-written last line; refuses an
    output that belongs to other prompts or another sampler (appending would mix them)."""
    if not output.exists():
        return 0
    done, keep = 0, 0  # complete lines, and the byte length they span
    expected = iter_prompts(prompts)
    with output.open("rb") as handle:
        for line in handle:
            if not line.endswith(b"\n"):
                break  # killed mid-write: redo this prompt
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise ConfigError(
                    f"output={output}, line {done + 1}: not JSON; delete the file (or choose another "
                    f"output=) to generate from scratch"
                ) from None
            number, source = next(expected, (None, None))
            if source is None or row.get("prompt") != source["prompt"]:
                raise ConfigError(
                    f"output={output}, line {done + 1} does not match prompts_file={prompts}"
                    f"{f' line {number}' if number else ' (it has fewer prompts)'}: the output belongs to "
                    f"other prompts; delete it or choose another output="
                )
            if row.get("sampler") != sampler:
                raise ConfigError(
                    f"output={output} was written with {row.get('sampler')}, this command samples with "
                    f"{sampler}; delete it or choose another output= (appending would mix the two)"
                )
            done += 1
            keep += len(line)
    if keep < output.stat().st_size:
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


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name} but no CUDA device is visible; use device=cpu")
    return torch.device(name)


def run(cfg: DictConfig) -> list[dict] | dict:
    """The completed row for ``prompt=``; a summary (output, total, generated, skipped) for a file."""
    prompts = prompts_path(cfg)
    positive_int(cfg, "batch_size")
    positive_int(cfg, "window")
    if prompts is not None:
        output = output_path(cfg, prompts)
        for _ in iter_prompts(prompts):  # a malformed line fails before the checkpoint loads
            pass
    device = pick_device(cfg.device)
    dtype = getattr(torch, cfg.dtype) if cfg.dtype else None
    try:
        loaded = load_checkpoint(cfg.ckpt, device=device, dtype=dtype)
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(str(err)) from err
    completer = Completer(cfg, loaded, device)
    if prompts is not None:
        return generate_file(cfg, completer, prompts, output)
    row = {"prompt": str(cfg.prompt)}
    [result] = completer.complete([row], [completer.encode(row)])
    print(result["prompt"] + result["completion"])
    print(
        f"[NFE {result['nfe']}, {result['seconds']:.3f} s, {result['tokens_per_s']:.1f} tok/s, "
        f"{result['tokens_per_forward']:.2f} tok/forward]",
        file=sys.stderr,
    )
    return [result]


@hydra.main(config_path=str(CONF_DIR), config_name="generate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    exit_on_bad_input(run, cfg)


if __name__ == "__main__":
    run_cli(main, "generate")
