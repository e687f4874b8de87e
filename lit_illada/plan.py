"""Will a run fit, and how long will it take? ``python -m lit_illada.plan [overrides]``.

    python -m lit_illada.plan model=illada_8b trainer.devices=8 data.seq_len=4096 data.batch_size=1
    python -m lit_illada.plan model=illada_8b parallel.activation_checkpointing=1 gpu_memory_gb=141

Prints the exact parameter count, the bytes per device (params, grads, optimizer state,
activations, transient buffers), whether that fits ``gpu_memory_gb``, the FLOPs per token and
the time for ``token_budget`` tokens at ``mfu``. It takes the same overrides as training; the
training entry point runs the same plan before allocating anything and refuses runs that do
not fit. Nothing is allocated or built: parameters and FLOPs are counted from the config.
"""

from __future__ import annotations

import math
from numbers import Real

import hydra
from omegaconf import DictConfig

from lit_illada.config.build import build_model_config
from lit_illada.config.checks import exit_on_bad_input
from lit_illada.config.errors import ConfigError
from lit_illada.config.overrides import run_cli
from lit_illada.config.paths import CONF_DIR
from lit_illada.planning.memory import GIB
from lit_illada.planning.plan import find_fit, layout_from_config, make_plan

# The plan's own keys: (key, upper bound, what a good value looks like).
PLAN_KEYS = (
    ("gpu_memory_gb", None, "the memory of one GPU, e.g. 80 (H100) or 141 (H200)"),
    ("peak_tflops", None, "the dense bf16 peak of one GPU, e.g. 989 (H100/H200)"),
    ("mfu", 1.0, "the fraction of peak reached, e.g. 0.4"),
)


def check_plan_keys(cfg: DictConfig) -> None:
    """A zero, negative or non-finite value would divide by zero or plan nonsense: refuse it."""
    for key, high, example in PLAN_KEYS:
        value = cfg[key]
        number = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
        if not number or value <= 0 or (high is not None and value > high):
            allowed = f"in (0, {high:g}]" if high is not None else "> 0"
            raise ConfigError(f"{key}={value!r}: must be a number {allowed}; give {example}")
    budget = cfg.token_budget
    if budget is not None and (
        not isinstance(budget, Real) or isinstance(budget, bool) or not math.isfinite(budget) or budget < 0
    ):
        raise ConfigError(f"token_budget={budget!r}: must be a number of tokens >= 0 (e.g. 1e12), or null")


def report(cfg: DictConfig) -> tuple[str, bool]:
    """The plan text for a composed ``conf/plan.yaml``, and whether the run fits as given."""
    check_plan_keys(cfg)
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


def run(cfg: DictConfig) -> None:
    """Print the plan; exit 1 when the run does not fit as given (a bad value exits 2, one line)."""
    try:
        text, fits = report(cfg)
    except ValueError as err:  # ModelConfig's own checks name the key
        raise ConfigError(str(err)) from None
    print(text)
    if not fits:
        raise SystemExit(1)


@hydra.main(config_path=str(CONF_DIR), config_name="plan", version_base="1.3")
def main(cfg: DictConfig) -> None:
    exit_on_bad_input(run, cfg)


if __name__ == "__main__":
    run_cli(main, "plan")
