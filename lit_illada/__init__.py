"""lit_illada: masked diffusion language models (LLaDA / iLLaDA) on PyTorch Lightning.

The top level holds only the ``python -m`` commands (train, generate, evaluate, sweep, plan,
convert, lm_eval). ``import lit_illada`` is cheap: nothing below is imported until used, so the
sweep driver and ``analysis`` never pull in torch unless they need it.

    loaded = lit_illada.load("runs/my-run")   # any checkpoint -> model, tokenizer, objective, run config
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lit_illada.checkpoints.loader import LoadedModel, load

__all__ = ["LoadedModel", "load"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from lit_illada.checkpoints import loader  # noqa: PLC0415 - lazy: imports torch and Hydra

        return getattr(loader, name)
    raise AttributeError(f"module 'lit_illada' has no attribute {name!r}")
