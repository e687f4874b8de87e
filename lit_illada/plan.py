"""Will a run fit, and how long will it take? ``python -m lit_illada.plan [overrides]``.

    python -m lit_illada.plan model=illada_8b trainer.devices=8 data.seq_len=4096 data.batch_size=1
    python -m lit_illada.plan model=illada_8b parallel.activation_checkpointing=1 gpu_memory_gb=141

Prints the exact parameter count, the bytes per device (params, grads, optimizer state,
activations, transient buffers), whether that fits ``gpu_memory_gb``, the FLOPs per token and
the time for ``token_budget`` tokens at ``mfu``. It takes the same overrides as training; the
training entry point runs the same plan before allocating anything and refuses runs that do
not fit. Nothing is allocated: the model is counted on the meta device.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from lit_illada.config.build import build_model_config
from lit_illada.config.paths import CONF_DIR
from lit_illada.planning.memory import GIB
from lit_illada.planning.plan import find_fit, layout_from_config, make_plan


def report(cfg: DictConfig) -> tuple[str, bool]:
    """The plan text for a composed ``conf/plan.yaml``, and whether the run fits as given."""
    gpu = int(cfg.gpu_memory_gb * GIB), f"GPU ({cfg.gpu_memory_gb} GiB)"
    plan = make_plan(build_model_config(cfg), layout_from_config(cfg), *gpu)
    text = plan.render(cfg.token_budget, cfg.mfu, cfg.peak_tflops * 1e12)
    if not plan.fits:
        found = find_fit(plan)
        if found is None:
            text += (
                "\nno smaller batch or activation checkpointing fits: "
                "add devices (trainer.devices, trainer.num_nodes)"
            )
        else:
            fit, overrides = found
            text += f"\n\nfits with {' '.join(overrides)}:\n{fit.render()}"
    return text, plan.fits


@hydra.main(config_path=str(CONF_DIR), config_name="plan", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        text, fits = report(cfg)
    except ValueError as err:  # a bad key: the message names it
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    print(text)
    raise SystemExit(0 if fits else 1)


if __name__ == "__main__":
    main()
