"""The sections of ``benchmarks/gpu_check.py``: one module per part of the GPU path, one function
per section, taking the run's ``Settings`` and filling its ``Section`` record (``common``)."""
