"""The natural-text models several findings share: micro models pretrained on the Python standard
library, diffusion and autoregressive, same backbone, same tokens, one per seed."""

from __future__ import annotations

from common import SEEDS, train

STEPS = 1200
TEXT = ["model=micro", "data=pystdlib", "data.seq_len=128", "data.batch_size=16", f"trainer.max_steps={STEPS}",
        "trainer.val_check_interval=400", "trainer.max_time=null", "trainer.precision=32-true", "optimizer.lr=2e-3"]


def stdlib_models(root, objective: str = "diffusion") -> list:
    return [train(f"stdlib-{objective}-s{seed}", f"objective={objective}", f"seed={seed}", *TEXT, root=root)
            for seed in SEEDS]
