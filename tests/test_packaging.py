"""A non-editable install ships every package and the config trees (pip install . must work)."""

from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent


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
