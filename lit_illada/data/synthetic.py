"""Synthetic tasks that a ~1M-parameter model learns in minutes on a CPU, generated from a seed.

Each task draws prompt/answer examples from its own ``random.Random(seed)``: the same seed
gives the same examples on every machine and Python version, with no download. Examples are
drawn until ``test_size + val_size + train_size`` distinct questions exist and dealt out in
that order, so the three splits never share a question and the test split does not depend on
``train_size``.

A task is an ``SFTSource`` (``data=<task>`` trains on its train split, with the prompt/answer
structure that both SFT masking scopes use) and gives the evaluation side what it needs:
``choices`` (the multiple-choice form: the answer among near-miss distractors) and ``check``
(an independent verifier of an answer, used by the tests). Why these tasks (README, "Findings"):

- ``addition``: fixed-width sums (``347+058=`` -> ``0405``): each answer digit depends on
  several prompt digits and on its neighbour's carry;
- ``sort``: sort a list of digits; the answer's length follows the prompt's;
- ``sudoku``: complete a 4x4 Sudoku; cells constrain each other, so committing several at
  once (too few denoising steps) or in a bad order can hurt;
- ``pick``: different digits of the listed ones; the answer is not a function of the prompt, so
  digits committed in one step from their separate marginals repeat each other: where too few
  steps and a bad order really hurt (the quality-vs-NFE front);
- ``facts``: key -> value facts queried forward (``key=`` -> value) and in reverse (the key
  from ``=value``, an infilling query): what a bidirectional model can answer and a
  left-to-right one cannot.
"""

from __future__ import annotations

import itertools
import random
import string
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from lit_illada.data.sft import SFTExample
from lit_illada.data.splits import SPLITS, check_split


@dataclass(frozen=True)
class TaskExample:
    """A prompt, its answer and the text after the answer (non-empty for infilling queries)."""

    prompt: str
    answer: str
    suffix: str = ""


class SyntheticTask(ABC):
    """Distinct examples from a seed, dealt into train / val / test."""

    has_splits = True
    name: str

    def __init__(self, seed: int = 0, train_size: int = 20_000, val_size: int = 500, test_size: int = 500) -> None:
        for key, value in (("train_size", train_size), ("val_size", val_size), ("test_size", test_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"data.source.{key}={value!r}: must be a non-negative integer")
        self.seed = seed
        self.sizes = {"train": train_size, "val": val_size, "test": test_size}
        self._splits: dict[str, list[TaskExample]] | None = None

    @abstractmethod
    def draw(self, rng: random.Random) -> TaskExample:
        """One random example."""

    @abstractmethod
    def check(self, example: TaskExample, answer: str) -> bool:
        """Whether ``answer`` is a correct answer to ``example`` (computed from the prompt)."""

    @abstractmethod
    def distractor(self, example: TaskExample, rng: random.Random) -> str:
        """A wrong answer close to the right one (the multiple-choice form)."""

    def capacity(self) -> int | None:
        """How many distinct prompts exist, when small enough to matter (None: plenty)."""
        return None

    def split(self, split: str) -> list[TaskExample]:
        check_split(split)
        if self._splits is None:
            self._splits = self._deal()
        return self._splits[split]

    def examples(self, split: str | None = None) -> Iterator[SFTExample]:
        """The ``SFTSource`` view: prompt and answer of each example (answer + suffix for infills)."""
        for current in SPLITS if split is None else (split,):
            for example in self.split(current):
                yield SFTExample(example.prompt, example.answer + example.suffix)

    def choices(self, example: TaskExample, count: int, rng: random.Random) -> tuple[list[str], int]:
        """The answer among ``count - 1`` distinct wrong answers, shuffled; returns (choices, index)."""
        options = {example.answer}
        for _ in range(1000 * count):
            if len(options) == count:
                break
            wrong = self.distractor(example, rng)
            if not self.check(example, wrong):
                options.add(wrong)
        if len(options) < count:
            raise ValueError(f"{self.name}: cannot find {count - 1} distractors for {example.prompt!r}")
        ordered = sorted(options)
        rng.shuffle(ordered)
        return ordered, ordered.index(example.answer)

    def _deal(self) -> dict[str, list[TaskExample]]:
        wanted = sum(self.sizes.values())
        capacity = self.capacity()
        if capacity is not None and wanted > capacity:
            raise ValueError(
                f"{self.name}: train_size + val_size + test_size = {wanted} exceeds the {capacity} distinct "
                f"examples this task has; lower the sizes"
            )
        rng = random.Random(f"{self.name}:{self.seed}")
        seen: set[str] = set()
        drawn: list[TaskExample] = []
        for _ in range(50 * wanted + 1000):
            if len(drawn) == wanted:
                break
            example = self.draw(rng)
            if example.prompt + "\0" + example.suffix not in seen:
                seen.add(example.prompt + "\0" + example.suffix)
                drawn.append(example)
        if len(drawn) < wanted:
            raise ValueError(f"{self.name}: found only {len(drawn)} distinct examples of the {wanted} asked for")
        # Test first, then val, then train: the held-out splits do not depend on train_size, so
        # an evaluation (train_size=0) sees the same test examples as any training run left out.
        test, val = self.sizes["test"], self.sizes["val"]
        return {"test": drawn[:test], "val": drawn[test : test + val], "train": drawn[test + val :]}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(seed={self.seed}, sizes={self.sizes})"


class Addition(SyntheticTask):
    """``"347+058="`` -> ``"0405"``: operands of 1 to ``max_digits`` digits (lengths drawn
    uniformly), written zero-padded to ``max_digits``; the sum zero-padded to ``max_digits + 1``.

    Fixed width puts each digit of the answer at a fixed offset from the operand digits it
    depends on. Unpadded (``"347+58="`` -> ``"405"``), the micro model did not learn it at the
    recipe's 3,000 steps (exact match 0.005; val NLL flat from step 1,000 to 2,000 at 6,000
    steps), and at 2 digits it memorized the training sums (val NLL rising) instead.
    """

    name = "addition"

    def __init__(self, max_digits: int = 3, **sizes) -> None:
        if not 1 <= max_digits <= 9:
            raise ValueError(f"data.source.max_digits={max_digits}: choose 1..9")
        self.max_digits = max_digits
        super().__init__(**sizes)

    def _operand(self, rng: random.Random) -> int:
        digits = rng.randint(1, self.max_digits)
        return rng.randint(0 if digits == 1 else 10 ** (digits - 1), 10**digits - 1)

    def _sum(self, value: int) -> str:
        return str(value).zfill(self.max_digits + 1)

    def draw(self, rng):
        a, b = self._operand(rng), self._operand(rng)
        width = self.max_digits
        return TaskExample(f"{a:0{width}d}+{b:0{width}d}=", self._sum(a + b))

    def check(self, example, answer):
        a, b = example.prompt.removesuffix("=").split("+")
        return answer.strip() == self._sum(int(a) + int(b))

    def distractor(self, example, rng):
        value = int(example.answer)
        change = rng.choice([1, -1, 10, -10, 100, -100])
        return self._sum(max(value + change, 0))


class Sort(SyntheticTask):
    """``"sort 5 3 9 1:"`` -> ``"1 3 5 9"``: 2 to ``max_length`` digits."""

    name = "sort"

    def __init__(self, max_length: int = 8, **sizes) -> None:
        if not 2 <= max_length <= 20:
            raise ValueError(f"data.source.max_length={max_length}: choose 2..20")
        self.max_length = max_length
        super().__init__(**sizes)

    def draw(self, rng):
        items = [rng.randint(0, 9) for _ in range(rng.randint(2, self.max_length))]
        return TaskExample("sort " + " ".join(map(str, items)) + ":", " ".join(map(str, sorted(items))))

    def check(self, example, answer):
        items = example.prompt.removeprefix("sort ").removesuffix(":").split()
        return answer.strip().split() == sorted(items, key=int)

    def distractor(self, example, rng):
        items = example.answer.split()
        i = rng.randrange(len(items))
        items[i] = str((int(items[i]) + rng.choice([1, 9])) % 10)  # one digit off
        return " ".join(items)


class Pick(SyntheticTask):
    """``"pick 82571:"`` -> ``"518"``: ``picks`` different digits of the listed ones, in any order;
    every such answer is right.

    The training answer is drawn uniformly among them, and ``check`` accepts each. The answer is
    not a function of the prompt: each position alone is any listed digit, but a digit already
    written is ruled out for the others. A sampler that commits several digits in one step, each
    from its own marginal, tends to write the same digit twice; one that commits them one after
    another does not. This is the task where too few denoising steps, or a bad order, hurt.
    """

    name = "pick"

    def __init__(self, listed: int = 5, picks: int = 3, **sizes) -> None:
        if not 2 <= listed <= 10:
            raise ValueError(f"data.source.listed={listed}: choose 2..10")
        if not 2 <= picks <= listed:
            raise ValueError(f"data.source.picks={picks}: choose 2..listed ({listed})")
        self.listed, self.picks = listed, picks
        super().__init__(**sizes)

    def draw(self, rng):
        digits = rng.sample(range(10), self.listed)
        return TaskExample("pick " + "".join(map(str, digits)) + ":", "".join(map(str, rng.sample(digits, self.picks))))

    def check(self, example, answer):
        listed = example.prompt.removeprefix("pick ").removesuffix(":")
        picked = answer.strip()
        return len(picked) == self.picks == len(set(picked)) and all(p in listed for p in picked)

    def distractor(self, example, rng):
        picked = list(example.answer)
        i, j = rng.sample(range(len(picked)), 2)
        picked[i] = picked[j]  # a digit twice: what parallel decoding writes
        return "".join(picked)


class Sudoku(SyntheticTask):
    """Complete a 4x4 Sudoku (rows, columns and 2x2 boxes hold 1-4 once each).

    Prompt: the 16 cells row by row, ``.`` for the ``blanks`` hidden ones, rows separated by
    ``/``, then ``=``. Answer: the full solution in the same layout. Puzzles are drawn so that
    the solution is unique, so exact match is the right metric.
    """

    name = "sudoku"

    def __init__(self, blanks: int = 8, **sizes) -> None:
        if not 1 <= blanks <= 12:
            raise ValueError(f"data.source.blanks={blanks}: choose 1..12")
        self.blanks = blanks
        super().__init__(**sizes)

    @staticmethod
    def _grids() -> list[tuple[int, ...]]:
        """All 288 valid 4x4 grids."""
        found = []
        for cells in itertools.product(itertools.permutations(range(1, 5)), repeat=4):
            grid = tuple(v for row in cells for v in row)
            if Sudoku._valid(grid):
                found.append(grid)
        return found

    @staticmethod
    def _valid(grid: tuple[int, ...]) -> bool:
        groups = [[r * 4 + c for c in range(4)] for r in range(4)] + [[r * 4 + c for r in range(4)] for c in range(4)]
        groups += [[(br + r) * 4 + bc + c for r in range(2) for c in range(2)] for br in (0, 2) for bc in (0, 2)]
        return all(sorted(grid[i] for i in group) == [1, 2, 3, 4] for group in groups)

    @staticmethod
    def render(cells) -> str:
        text = "".join(str(c) for c in cells)
        return "/".join(text[i : i + 4] for i in range(0, 16, 4))

    _all: np.ndarray | None = None  # (288, 16): every valid grid, built once

    def draw(self, rng):
        if Sudoku._all is None:
            Sudoku._all = np.array(self._grids())
        while True:
            grid = Sudoku._all[rng.randrange(len(Sudoku._all))]
            hidden = set(rng.sample(range(16), self.blanks))
            shown = [i for i in range(16) if i not in hidden]
            # A unique solution: no other valid grid agrees with every shown cell.
            if (Sudoku._all[:, shown] == grid[shown]).all(axis=1).sum() == 1:
                puzzle = ["." if i in hidden else int(v) for i, v in enumerate(grid)]
                return TaskExample(self.render(puzzle) + "=", self.render(grid.tolist()))

    def check(self, example, answer):
        cells = answer.strip().replace("/", "")
        if len(cells) != 16 or not cells.isdigit():
            return False
        grid = tuple(int(c) for c in cells)
        puzzle = example.prompt.removesuffix("=").replace("/", "")
        return self._valid(grid) and all(p == "." or int(p) == g for p, g in zip(puzzle, grid, strict=True))

    def distractor(self, example, rng):
        cells = list(example.answer.replace("/", ""))
        blanks = [i for i, p in enumerate(example.prompt.removesuffix("=").replace("/", "")) if p == "."]
        i, j = rng.sample(blanks, 2) if len(blanks) > 1 else (blanks[0], blanks[0])
        cells[i], cells[j] = cells[j], cells[i]
        if cells[i] == cells[j]:
            cells[i] = str(int(cells[i]) % 4 + 1)
        return self.render(cells)



class Facts(SyntheticTask):
    """``num_facts`` random key -> value facts (3-letter keys, 3-digit values), all in training.

    Train split: every fact as a statement ``"key="`` -> ``"value"``. The val and test splits
    ask about the same facts (a memorization task; its splits are over queries): forward
    queries ``"key="`` -> value, and with ``reverse=True`` reverse queries: the key, given the
    text after it (prompt ``""``, answer the key, suffix ``"=value"``): an infill that only a
    model that reads the right-hand side can answer.
    """

    name = "facts"

    def __init__(self, num_facts: int = 500, reverse: bool = False, seed: int = 0, val_size: int = 100,
                 test_size: int = 200) -> None:
        if not 1 <= num_facts <= 5000:
            raise ValueError(f"data.source.num_facts={num_facts}: choose 1..5000")
        self.num_facts, self.reverse = num_facts, reverse
        super().__init__(seed=seed, train_size=num_facts, val_size=val_size, test_size=test_size)
        rng = random.Random(f"facts:{seed}")
        keys = rng.sample(["".join(k) for k in itertools.product(string.ascii_lowercase, repeat=3)], num_facts)
        values = rng.sample(range(100, 1000), min(num_facts, 900)) if num_facts <= 900 else None
        if values is None:
            raise ValueError(f"data.source.num_facts={num_facts}: at most 900 distinct 3-digit values")
        self.facts = dict(zip(keys, map(str, values), strict=True))

    def _deal(self):
        keys = list(self.facts)
        rng = random.Random(f"facts-queries:{self.seed}")
        queried = rng.sample(keys, min(len(keys), self.sizes["val"] + self.sizes["test"]))
        val, test = queried[: self.sizes["val"]], queried[self.sizes["val"] :]
        return {"train": [self._forward(k) for k in keys], "val": [self._query(k) for k in val],
                "test": [self._query(k) for k in test]}

    def _forward(self, key: str) -> TaskExample:
        return TaskExample(f"{key}=", self.facts[key])

    def _query(self, key: str) -> TaskExample:
        return TaskExample("", key, f"={self.facts[key]}") if self.reverse else self._forward(key)

    def draw(self, rng):  # unused: the facts are fixed at construction
        raise NotImplementedError

    def check(self, example, answer):
        if example.suffix:  # reverse: the key whose value follows
            return self.facts.get(answer.strip()) == example.suffix.removeprefix("=")
        return self.facts.get(example.prompt.removesuffix("=")) == answer.strip()

    def distractor(self, example, rng):
        other = rng.choice(list(self.facts))
        return other if example.suffix else self.facts[other]
