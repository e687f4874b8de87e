"""Packaging: a non-editable install ships every package and the config trees (pip install .
must work); the declared dependencies are what the code imports, each with a true floor (the
lowest-versions CI lane installs them, .ci/floors.py); importing ``analysis`` leaves
matplotlib's backend alone."""

import ast
import functools
import importlib.metadata
import importlib.util
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _floors_module():
    spec = importlib.util.spec_from_file_location("ci_floors", ROOT / ".ci" / "floors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _requirements(group: str | None = None) -> dict[str, Requirement]:
    texts = PROJECT["dependencies"] if group is None else PROJECT["optional-dependencies"][group]
    return {canonicalize_name(Requirement(t).name): Requirement(t) for t in texts}


def test_every_python_package_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("lit_illada", "analysis")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"


def test_config_trees_are_mapped_into_the_package():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["package-dir"] == {"lit_illada.conf": "conf", "lit_illada.sweeps": "sweeps"}
    assert (ROOT / "conf" / "train.yaml").exists() and any((ROOT / "sweeps").glob("*.yaml"))


# -- dependencies -----------------------------------------------------------------------------


def _third_party_imports(*folders: str) -> set[str]:
    """Top-level names of the modules imported anywhere under ``folders`` (lazy imports too)."""
    names: set[str] = set()
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    # The benchmark scripts' own packages (benchmarks/gpu_check_sections) are imported by their tests.
    benchmark_packages = {path.parent.name for path in (ROOT / "benchmarks").glob("*/__init__.py")}
    first_party = {"lit_illada", "analysis", "tests", "__future__", *benchmark_packages}
    return {n for n in names if n not in sys.stdlib_module_names and n not in first_party}


@functools.cache
def _installed() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def _distribution(module: str) -> str:
    """The distribution that installs ``module`` (its own name when it is not installed here)."""
    found = _installed().get(module, [module])
    return canonicalize_name(found[0])


def test_what_the_code_imports_is_declared_and_nothing_else():
    runtime = set(_requirements())
    extras = {name for group in PROJECT["optional-dependencies"] for name in _requirements(group)}
    imported = {_distribution(m) for m in _third_party_imports("lit_illada", "analysis")}
    assert imported - runtime - extras == set(), "imported by lit_illada or analysis but not declared"
    # A runtime dependency nobody imports is one more thing every user installs for nothing
    # (optional imports live in extras: xformers in gpu, transformers in hf).
    assert runtime - imported == set(), "declared in dependencies but imported nowhere"


def test_what_the_tests_import_is_declared_for_them():
    declared = set(_requirements()) | set(_requirements("dev"))
    imported = {_distribution(m) for m in _third_party_imports("tests")}
    assert imported - declared == set(), "tests import these: add them to the dev extra"


def test_every_dependency_has_a_floor():
    floors = _floors_module()
    lines = floors.constraint_lines(ROOT / "pyproject.toml", list(PROJECT["optional-dependencies"]))
    assert all("==" in line for line in lines)


# The lowest version whose API the code uses, and where (raise these with the code).
NEEDS = [
    ("torch", None, "2.9", "fully_shard public (2.6), on CPU (2.7); CPU SDPA fuses GQA (2.9): planning/"),
    ("wandb", None, "0.28", "tests/test_analysis_wandb.py's stand-in for wandb.Api subclasses 0.28's Run"),
    ("lightning", None, "2.6", "EMAWeightAveraging, Trainer.fit(weights_only=): training/run.py, train.py"),
    ("lm-eval", "dev", "0.4.12", "`lm_eval run` (0.4.10), LM.device (0.4.12): lm_eval_adapter.py"),
    (
        "lm-eval",
        "eval",
        "0.4.12",
        "`lm_eval run` (0.4.10), LM.device (0.4.12): evaluation/lm_eval_adapter.py",
    ),
    ("optuna", None, "4.9", "heartbeat retry callbacks, JournalFileBackend: sweeping/study.py"),
    ("numpy", None, "2.0", "pyarrow (under datasets) resolves to releases that need numpy 2"),
]


@pytest.mark.parametrize(("name", "group", "needed", "why"), NEEDS, ids=[f"{n}-{g}" for n, g, *_ in NEEDS])
def test_floor_covers_the_api_the_code_uses(name, group, needed, why):
    requirement = _requirements(group)[name]
    floor = _floors_module().floor(requirement)
    assert floor >= Version(needed), f"{requirement}: the code needs {needed} for {why}"


@pytest.mark.parametrize(
    ("name", "first_untested"),
    [("lightning", "2.7"), ("optuna", "6")],  # private trainer attributes; the heartbeat API
)
def test_majors_the_code_relies_on_internals_of_are_capped(name, first_untested):
    assert Version(first_untested) not in _requirements()[name].specifier


def test_gpu_extra_leaves_a_new_torch_as_it_is():
    """xformers before 0.0.34 requires one torch release exactly (==), so installing the extra
    would swap the user's torch; 0.0.34 on builds for the stable ABI of torch >= 2.10."""
    gpu = _requirements("gpu")
    assert _floors_module().floor(gpu["xformers"]) >= Version("0.0.34")
    assert gpu["torch"].specifier == SpecifierSet(">=2.10"), "state the torch the xformers builds need"


def test_requires_python_admits_only_pythons_the_suite_runs_on():
    allowed = SpecifierSet(PROJECT["requires-python"])
    assert "3.10.20" not in allowed, "the suite reads TOML with tomllib (3.11+) and CI has no 3.10"
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in allowed


def test_floors_script_pins_each_direct_dependency(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        textwrap.dedent(
            """
            [project]
            dependencies = ["torch>=2.6", "lightning>=2.6,<2.7", "tomli>=2; python_version < '3.11'"]
            [project.optional-dependencies]
            dev = ["pytest>=8", "torch>=2.7"]
            gpu = ["xformers"]
            """
        )
    )
    floors = _floors_module()
    assert floors.constraint_lines(pyproject, ["dev"], {"lightning": "2.6.6"}) == [
        "torch==2.7",  # named twice: the higher floor
        "lightning==2.6.6",  # --pin
        'tomli==2 ; python_version < "3.11"',
        "pytest==8",
    ]
    with pytest.raises(ValueError, match="xformers: no lower bound"):
        floors.constraint_lines(pyproject, ["gpu"])
    with pytest.raises(ValueError, match="not a direct dependency"):
        floors.constraint_lines(pyproject, [], {"numpy": "2.0"})


# -- matplotlib backend -----------------------------------------------------------------------


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"} | env
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=environ, capture_output=True, text=True
    )


def test_importing_analysis_keeps_the_users_matplotlib_backend():
    """A notebook's inline backend survives ``from analysis.figures import ...``."""
    result = _python(
        """
        import pkgutil, importlib, matplotlib
        matplotlib.use("svg")
        import analysis
        for module in pkgutil.iter_modules(analysis.__path__):
            importlib.import_module(f"analysis.{module.name}")
        print(matplotlib.get_backend())
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "svg"


def test_loss_curve_needs_no_display(tmp_path):
    """The training command draws loss_curve.png in whatever backend its process has: with a
    display backend and no reachable display, it still draws (TkAgg stands for any)."""
    pytest.importorskip("tkinter")
    (tmp_path / "metrics.csv").write_text("step,train/nll,val/nll\n1,3.0,\n2,2.5,2.7\n")
    result = _python(
        f"""
        import matplotlib
        matplotlib.use("TkAgg")
        from analysis import load_metrics
        from analysis.figures import plot_loss_curves
        plot_loss_curves(load_metrics({str(tmp_path)!r}), {str(tmp_path / "loss.png")!r})
        """,
        DISPLAY=":4095",  # no X server there
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"


def test_command_line_draws_without_a_display(tmp_path):
    (tmp_path / "metrics.csv").write_text("step,train/nll,val/nll\n1,3.0,\n2,2.5,2.7\n")
    environ = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"} | {"DISPLAY": ":4095"}
    result = subprocess.run(
        [sys.executable, "-m", "analysis", "loss_curve", str(tmp_path), "--out", str(tmp_path / "c.png")],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "c.png").exists()
