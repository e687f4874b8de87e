"""The synthetic tasks: deterministic, disjoint splits, right answers (checked independently here),
their data and task configs agree, and the JSONL task loader refuses bad records by line."""

from __future__ import annotations

import itertools
import json

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from lit_illada.config.paths import CONF_DIR
from lit_illada.data.synthetic import Addition, Facts, Pick, Sort, Sudoku, TaskExample
from lit_illada.evaluation.tasks.jsonl import load_jsonl_task, split_task_files

SMALL = {"train_size": 300, "val_size": 50, "test_size": 50}
TASKS = [Addition(**SMALL), Sort(**SMALL), Sudoku(**SMALL), Pick(**SMALL), Facts(num_facts=120, val_size=20, test_size=40)]


def _sudoku_solves(prompt: str, answer: str) -> bool:
    rows = answer.split("/")
    grid = [[int(c) for c in row] for row in rows]
    units = [row for row in grid] + [[grid[r][c] for r in range(4)] for c in range(4)]
    units += [[grid[r][c] for r in (br, br + 1) for c in (bc, bc + 1)] for br in (0, 2) for bc in (0, 2)]
    given = prompt.removesuffix("=").replace("/", "")
    return all(sorted(u) == [1, 2, 3, 4] for u in units) and all(
        g == "." or int(g) == v for g, v in zip(given, (v for row in grid for v in row), strict=True)
    )


def independent_answer_ok(task, example) -> bool:
    """Each task's answer, verified without the task's own code."""
    if isinstance(task, Addition):
        a, b = example.prompt.removesuffix("=").split("+")
        return int(example.answer) == int(a) + int(b) and len(a) == len(b) == 3 and len(example.answer) == 4
    if isinstance(task, Sort):
        digits = [int(d) for d in example.prompt[len("sort "):-1].split()]
        return [int(d) for d in example.answer.split()] == sorted(digits)
    if isinstance(task, Sudoku):
        return _sudoku_solves(example.prompt, example.answer)
    if isinstance(task, Pick):
        listed, picked = example.prompt[len("pick "):-1], example.answer
        return len(set(listed)) == len(listed) == 5 and len(set(picked)) == len(picked) == 3 and set(picked) <= set(listed)
    statement = (example.prompt + example.answer + example.suffix).split("=")
    return task.facts[statement[0]] == statement[1]


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_answers_are_right_splits_are_disjoint_and_the_seed_decides(task):
    splits = {name: task.split(name) for name in ("train", "val", "test")}
    for examples in splits.values():
        assert examples and all(independent_answer_ok(task, e) for e in examples)
        assert all(task.check(e, e.answer) for e in examples)
    if not isinstance(task, Facts):  # facts: every fact is trained on; its splits are over queries
        keys = {name: {e.prompt for e in examples} for name, examples in splits.items()}
        assert not keys["train"] & keys["test"] and not keys["train"] & keys["val"] and not keys["val"] & keys["test"]
        assert len(keys["train"]) == SMALL["train_size"]  # distinct prompts
    again = type(task)(**({"num_facts": 120, "val_size": 20, "test_size": 40} if isinstance(task, Facts) else SMALL))
    assert again.split("test") == splits["test"] and again.split("train") == splits["train"]


def test_another_seed_gives_other_examples_and_train_size_leaves_the_test_split_alone():
    assert Addition(seed=1, **SMALL).split("test") != Addition(seed=0, **SMALL).split("test")
    assert Addition(train_size=0, val_size=50, test_size=50).split("test") == Addition(**SMALL).split("test")


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_multiple_choice_holds_the_answer_once_among_wrong_ones(task):
    import random

    rng = random.Random(0)
    for example in task.split("test")[:20]:
        options, label = task.choices(example, 4, rng)
        assert len(set(options)) == 4 and options[label] == example.answer
        assert sum(task.check(example, option) for option in options) == 1


def test_addition_is_written_at_fixed_width_over_operands_of_every_length():
    examples = Addition(**SMALL).split("train")
    assert {len(e.prompt) for e in examples} == {len("347+058=")} and {len(e.answer) for e in examples} == {4}
    operand_digits = {len(str(int(a))) for e in examples for a in e.prompt[:-1].split("+")}
    assert operand_digits == {1, 2, 3}
    task = Addition(**SMALL)
    example = TaskExample("007+095=", "0102")
    assert task.check(example, "0102") and task.check(example, " 0102 ")
    assert not task.check(example, "102") and not task.check(example, "0103")


def test_pick_accepts_every_set_of_different_listed_digits_in_any_order():
    task = Pick(**SMALL)
    example = task.split("test")[0]
    listed = example.prompt[len("pick "):-1]
    right = ["".join(p) for p in itertools.permutations(listed, 3)]
    assert len(right) == 60 and all(task.check(example, answer) for answer in right)
    unlisted = next(d for d in "0123456789" if d not in listed)
    for wrong in (listed[0] * 2 + listed[1], unlisted + listed[:2], listed[:2], "", listed[:3] + listed[3]):
        assert not task.check(example, wrong), wrong
    # The training answers are spread over the listed digits, not one fixed choice per list.
    firsts = [e.prompt[len("pick "):-1].index(e.answer[0]) for e in task.split("train")]
    assert all(35 <= firsts.count(i) <= 85 for i in range(5))


def test_reverse_facts_are_infill_queries():
    facts = Facts(num_facts=50, reverse=True, val_size=10, test_size=10)
    for example in facts.split("test"):
        assert example.prompt == "" and example.suffix.startswith("=") and len(example.answer) == 3
    assert all(e.suffix == "" for e in facts.split("train"))  # training states facts forward only


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="train_size=-1"):
        Addition(train_size=-1)
    with pytest.raises(ValueError, match="max_digits=0"):
        Addition(max_digits=0)


@pytest.mark.parametrize("name", ["addition", "sort", "sudoku", "pick", "facts"])
def test_data_and_task_configs_describe_the_same_test_split(name):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        data = compose("train", overrides=[f"data={name}"]).data.source
        task = compose("evaluate", overrides=["ckpt=x", f"tasks=[{name}]"]).tasks[name].task
    trained_on = OmegaConf.to_container(data)
    evaluated = {k: v for k, v in OmegaConf.to_container(task).items() if k != "reverse"}
    trained_on.pop("train_size", None), evaluated.pop("train_size", None)
    assert trained_on == evaluated
    assert instantiate(data).split("test") == instantiate(task).split("test")


# --------------------------------------------------------------------------- JSONL tasks


def write(path, lines):
    path.write_bytes(b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines))
    return path


def test_a_jsonl_file_becomes_a_generation_or_choice_task_named_by_its_stem(tmp_path):
    gen = load_jsonl_task(write(tmp_path / "rev.jsonl", [
        json.dumps({"prompt": "abc:", "answer": "cba"}), "", json.dumps({"prompt": "x", "answer": "y", "suffix": "z"}),
    ]))
    assert gen.name == "rev" and [e.suffix for e in gen.examples()] == ["", "z"]
    mc = load_jsonl_task(write(tmp_path / "pick.jsonl", [json.dumps({"context": "1+1=", "choices": ["2", "3"], "label": 0})]))
    assert mc.name == "pick" and mc.examples()[0].choices == ["2", "3"]


@pytest.mark.parametrize(
    "lines, message",
    [
        ([json.dumps({"prompt": "a", "answer": "b"}), json.dumps({"prompt": "a"})], r"line 2: expected .*found keys \['prompt'\]"),
        ([json.dumps({"context": "c", "choices": ["a", "b"], "label": 2})], r"line 1: 'label'=2 must be an index into choices \(0..1\)"),
        ([json.dumps({"context": "c", "choices": [], "label": 0})], r"line 1: 'choices' must be a list of at least 2"),
        (["", b"\xff\xfe{}"], r"line 2: not UTF-8"),
        ([json.dumps({"prompt": "a", "answer": 3})], r"line 1: 'answer' must be a string"),
        (["{not json"], r"line 1: not JSON"),
        ([json.dumps([1, 2])], r"line 1: expected a JSON object, got list"),
        ([json.dumps({"prompt": "a", "answer": "b"}), json.dumps({"context": "c", "choices": ["a", "b"], "label": 0})],
         r"mixes generation records \(line 1\) and multiple-choice records \(line 2\)"),
        ([""], r"no records"),
    ],
)
def test_bad_records_are_refused_with_the_line_number(tmp_path, lines, message):
    with pytest.raises(ValueError, match=message):
        load_jsonl_task(write(tmp_path / "bad.jsonl", lines))


def test_files_in_tasks_move_to_task_files_before_hydra_sees_them():
    assert split_task_files(["tasks=[addition,data/my.jsonl]", "limit=3"]) == [
        "tasks=[addition]", "task_files=[data/my.jsonl]", "limit=3",
    ]
    assert split_task_files(["tasks=my.jsonl"]) == ["tasks=[]", "task_files=[my.jsonl]"]
    assert split_task_files(["tasks=[infill]"]) == ["tasks=[infill]"]
