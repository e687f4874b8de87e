"""A user's JSONL file as an evaluation task, named by the file's stem.

    python -m lit_illada.evaluate ckpt=runs/<name> tasks=[data/my_eval.jsonl]

One JSON object per line (blank lines are skipped), all of one kind:

- ``{"prompt": ..., "answer": ...}``: generation (``"response"`` is read as the answer, so a
  training file of ``data=sft_jsonl`` evaluates as it is). With ``"suffix": ...`` the answer sits
  between prompt and suffix (infilling). Scored by exact match (after stripping surrounding
  whitespace and anything after EOS) and edit similarity, with NFE, seconds and tokens/s.
- ``{"context": ..., "choices": [...], "label": <index>}``: multiple choice, scored by the
  configured scorer: accuracy with its binomial 95% interval.

A bad record is refused with its line number before any model is loaded.
"""

from __future__ import annotations

import json
from pathlib import Path

from lit_illada.data.synthetic import TaskExample
from lit_illada.evaluation.tasks.choice import ChoiceExample, ChoiceTask
from lit_illada.evaluation.tasks.generation import GenerationTask

CHOICE_KEYS = {"context", "choices", "label"}


class JsonlGeneration(GenerationTask):
    def __init__(self, name: str, examples: list[TaskExample], **options) -> None:
        super().__init__(**options)
        self.name, self._examples = name, examples

    def examples(self) -> list[TaskExample]:
        return self._examples[: self.limit]


class JsonlChoice(ChoiceTask):
    def __init__(self, name: str, examples: list[ChoiceExample], limit: int, seed: int = 0) -> None:
        super().__init__(limit, seed)
        self.name, self._examples = name, examples

    def examples(self) -> list[ChoiceExample]:
        return self._examples[: self.limit]


def load_jsonl_task(path: str | Path, limit: int | None = None, seed: int = 0) -> JsonlGeneration | JsonlChoice:
    """The task in ``path``; ``limit`` keeps the first records (default: all)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"tasks: {path}: no such file")
    records = list(_records(path))
    if not records:
        raise ValueError(f"tasks: {path}: no records (one JSON object per line)")
    kinds = {kind for _, kind, _ in records}
    if len(kinds) > 1:
        first = {kind: number for number, kind, _ in reversed(records)}
        raise ValueError(
            f"tasks: {path}: mixes generation records (line {first['generation']}) and multiple-choice "
            f"records (line {first['choice']}); put each kind in its own file"
        )
    limit = limit or len(records)
    if kinds == {"generation"}:
        return JsonlGeneration(path.stem, [example for _, _, example in records], limit=limit, seed=seed)
    return JsonlChoice(path.stem, [example for _, _, example in records], limit=limit, seed=seed)


def _records(path: Path):
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            where = f"tasks: {path}, line {number}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise ValueError(f"{where}: not UTF-8 ({err.reason} at byte {err.start}); save the file as UTF-8") from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{where}: not JSON ({err.msg})") from None
            yield (number, *_parse(record, where))


def _parse(record, where: str):
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
    keys = set(record)
    if "prompt" in keys and keys & {"answer", "response"}:
        answer_key = "answer" if "answer" in keys else "response"  # the SFT files' name works too
        for key in ("prompt", answer_key, "suffix"):
            if key in record and not isinstance(record[key], str):
                raise ValueError(f"{where}: {key!r} must be a string")
        return "generation", TaskExample(record["prompt"], record[answer_key], record.get("suffix", ""))
    if CHOICE_KEYS <= keys:
        choices, label = record["choices"], record["label"]
        if not isinstance(record["context"], str):
            raise ValueError(f"{where}: 'context' must be a string")
        if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) and c for c in choices):
            raise ValueError(f"{where}: 'choices' must be a list of at least 2 non-empty strings")
        if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < len(choices):
            raise ValueError(f"{where}: 'label'={label!r} must be an index into choices (0..{len(choices) - 1})")
        return "choice", ChoiceExample(record["context"], choices, label)
    raise ValueError(
        f"{where}: expected {{\"prompt\", \"answer\"[, \"suffix\"]}} (generation) or "
        f"{{\"context\", \"choices\", \"label\"}} (multiple choice); found keys {sorted(keys)}"
    )


def split_task_files(overrides: list[str]) -> list[str]:
    """``tasks=[a,data/x.jsonl]`` -> ``tasks=[a] task_files=[data/x.jsonl]``: a file is not a config
    group option, so it goes to ``task_files`` before Hydra composes (Hydra would look for
    ``conf/tasks/data/x.jsonl.yaml``). Items are split on commas: a path must not contain one."""
    out = []
    for override in overrides:
        key, sep, value = override.partition("=")
        if key != "tasks" or not sep:
            out.append(override)
            continue
        items = [item.strip().strip("'\"") for item in value.strip().removeprefix("[").removesuffix("]").split(",")]
        files = [item for item in items if item.endswith(".jsonl")]
        if not files:
            out.append(override)
            continue
        names = [item for item in items if item and item not in files]
        out += [f"tasks=[{','.join(names)}]", f"task_files=[{','.join(files)}]"]
    return out
