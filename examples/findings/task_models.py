"""The task models several findings share: micro models taught `sort` from scratch, one per seed
(experiment=task_from_scratch, fixed steps)."""

from __future__ import annotations

from common import SEEDS, train

SORT_STEPS = 1000
SORT = ["experiment=task_from_scratch", "data=sort", "data.batch_size=128", "optimizer.lr=3e-3",
        f"trainer.max_steps={SORT_STEPS}", "trainer.val_check_interval=500"]


def sort_models(root) -> list:
    return [train(f"sort-s{seed}", *SORT, f"seed={seed}", root=root) for seed in SEEDS]
