"""Write a prompt/response JSONL task that the task_from_scratch recipe was NOT calibrated on:
reverse a word of 3 to 6 random lowercase letters ("reverse kqzt:" -> "tzqk").

    python examples/make_reversal_data.py runs/reversal      # train.jsonl (4,000), test.jsonl (200)
    python -m lit_illada.train experiment=task_from_scratch data.source.path=runs/reversal/train.jsonl name=reversal
    python -m lit_illada.evaluate ckpt=runs/reversal tasks=[runs/reversal/test.jsonl]
"""

from __future__ import annotations

import json
import random
import string
import sys
from pathlib import Path


def words(rng: random.Random, count: int, seen: set[str]) -> list[str]:
    out = []
    while len(out) < count:
        word = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 6)))
        if word not in seen:
            seen.add(word)
            out.append(word)
    return out


def main(folder: str, train_size: int = 4000, test_size: int = 200, seed: int = 0) -> None:
    rng, seen, out = random.Random(seed), set(), Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for name, count in (("test", test_size), ("train", train_size)):  # disjoint: no test word is trained on
        rows = [{"prompt": f"reverse {w}:", "response": w[::-1]} for w in words(rng, count, seen)]
        (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        print(out / f"{name}.jsonl", len(rows))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/reversal")
