"""The natural-text models several findings share: micro models pretrained on the Python standard
library, diffusion and autoregressive, same backbone, same tokens, one per seed."""

from __future__ import annotations

from common import SEEDS, train_all

STEPS = 400
TEXT = ["model=micro", "data=pystdlib", "data.seq_len=128", "data.batch_size=16", f"trainer.max_steps={STEPS}",
        "trainer.val_check_interval=200", "trainer.max_time=null", "trainer.precision=32-true", "optimizer.lr=2e-3"]


def stdlib_models(root, objectives=("diffusion",)) -> dict[str, list]:
    """objective -> one run per seed, all trained side by side (train_all)."""
    jobs = [(f"stdlib-{objective}-s{seed}", [f"objective={objective}", f"seed={seed}", *TEXT])
            for objective in objectives for seed in SEEDS]
    runs = iter(train_all(jobs, root))
    return {objective: [next(runs) for _ in SEEDS] for objective in objectives}
