"""The package layout holds: the import contract (import-linter, pyproject.toml), no import cycles,
only commands at the top level, and ``import lit_illada`` / ``import analysis`` stay free of torch."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {"train", "generate", "evaluate", "sweep", "plan", "convert", "lm_eval"}
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True,
        env={"PYTHONPATH": str(pythonpath), "PATH": "/usr/bin:/bin"}, timeout=600,
    )


def test_the_import_contract_holds():
    result = lint_imports(ROOT, ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "BROKEN" not in result.stdout and "KEPT" in result.stdout


def test_the_import_contract_catches_a_core_module_importing_lightning(tmp_path):
    """The contract is not vacuous: one bad import in the core breaks it, naming the import."""
    for name in ("lit_illada", "analysis"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    with (tmp_path / "lit_illada" / "core" / "attention.py").open("a") as handle:
        handle.write("\nimport lightning  # deliberately broken\n")
    result = lint_imports(tmp_path, tmp_path)
    assert result.returncode != 0
    assert "lit_illada.core is not allowed to import lightning" in result.stdout
    assert "lit_illada.core.attention -> lightning" in result.stdout


def _cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), i.e. import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in graph.find_modules_directly_imported_by(module) & modules:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(modules):
        if module not in index:
            visit(module)
    return found


def test_no_module_import_cycles():
    sys.setrecursionlimit(10_000)
    graph = grimp.build_graph("lit_illada", "analysis", cache_dir=None)
    # A package's __init__ re-exporting its own modules is not a cycle worth naming.
    modules = {m for m in graph.modules if not graph.find_children(m)}
    assert _cycles(graph, modules) == []


def test_only_commands_sit_at_the_top_level():
    modules = {p.stem for p in (ROOT / "lit_illada").glob("*.py")} - {"__init__"}
    assert modules == COMMANDS
    packages = {p.name for p in (ROOT / "lit_illada").iterdir() if (p / "__init__.py").is_file()}
    for package in packages:  # each package says what it may import
        doc = (ROOT / "lit_illada" / package / "__init__.py").read_text()
        assert "import" in doc.split('"""')[1], f"lit_illada/{package}/__init__.py: say what it may import"


@pytest.mark.parametrize("statement", ["import lit_illada", "import analysis", "import lit_illada.sweeping.driver"])
def test_light_imports_do_not_pull_in_torch(statement):
    code = f"import sys; {statement}; heavy = {{'torch', 'lightning'}} & set(sys.modules); print(sorted(heavy))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_package_level_loader_is_reached_lazily():
    code = "import sys, lit_illada; assert 'torch' not in sys.modules; f = lit_illada.load; print(f.__module__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.stdout.strip() == "lit_illada.checkpoints.loader", result.stderr
