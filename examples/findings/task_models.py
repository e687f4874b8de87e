"""The task models several findings share, taught from scratch (experiment=task_from_scratch,
fixed steps), one per seed: micro models that sort lists of digits, and micro models that pick three
different digits of five listed (the task whose answer is not a function of the prompt)."""

from __future__ import annotations

from common import SEEDS, train

SORT_STEPS = 1000
SORT = ["experiment=task_from_scratch", "data=sort", "data.batch_size=128", "optimizer.lr=3e-3",
        f"trainer.max_steps={SORT_STEPS}", "trainer.val_check_interval=500"]
PICK_STEPS = 3000
# The recipe's own settings (lr 2e-3): at lr 3e-3 one seed of three never learned pick.
PICK = ["experiment=task_from_scratch", "data=pick", f"trainer.max_steps={PICK_STEPS}", "trainer.val_check_interval=500"]


def sort_models(root) -> list:
    return [train(f"sort-s{seed}", *SORT, f"seed={seed}", root=root) for seed in SEEDS]


def pick_models(root) -> list:
    return [train(f"pick-s{seed}", *PICK, f"seed={seed}", root=root) for seed in SEEDS]
