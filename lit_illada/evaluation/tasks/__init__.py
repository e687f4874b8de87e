"""Embedded evaluation tasks built from held-out standard-library files: no downloads.

Each task is a small class with a yaml in ``conf/tasks/``; ``python -m lit_illada.evaluate
tasks=[...]`` instantiates them by name.
"""

from lit_illada.evaluation.tasks.base import EvalModel, Task
from lit_illada.evaluation.tasks.docstring_to_body import DocstringToBody
from lit_illada.evaluation.tasks.infill import Infill
from lit_illada.evaluation.tasks.mc_nextline import MCNextLine

__all__ = ["DocstringToBody", "EvalModel", "Infill", "MCNextLine", "Task"]
