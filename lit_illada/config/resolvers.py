"""OmegaConf resolvers used by the conf/ tree. Registered once, on import."""

from __future__ import annotations

import platform
from functools import cache
from pathlib import Path

from omegaconf import OmegaConf


@cache
def cpu_has_native_bf16() -> bool:
    """True on CPUs with bf16 matmul instructions (AVX512-BF16 / AMX, or ARM BF16).

    Elsewhere bf16 autocast is emulated and slower than float32, so we keep float32.
    """
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.machine() == "arm64" and platform.system() == "Darwin"
    return any(flag in flags for flag in ("avx512_bf16", "amx_bf16", " bf16"))


def best_cpu_precision() -> str:
    """Lightning precision for CPU training: bf16 autocast where the CPU does bf16 natively."""
    return "bf16-mixed" if cpu_has_native_bf16() else "32-true"


def register() -> None:
    if not OmegaConf.has_resolver("best_cpu_precision"):
        OmegaConf.register_new_resolver("best_cpu_precision", best_cpu_precision)


register()
