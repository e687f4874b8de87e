"""Print each direct dependency of pyproject.toml pinned at its floor, as pip constraint lines.

    python .ci/floors.py [EXTRA ...] > floors.txt
    pip install -c floors.txt -e '.[dev]'

The lowest-versions CI lane installs the project under these constraints, so every floor that
pyproject.toml states is one the tests have run on. Dependencies not named are resolved as usual
(newest allowed), as a user's fresh install resolves them. ``--pin NAME==VERSION`` replaces one
floor (the lane's torch; see .ci/run). Every direct dependency must have a floor: one without is
an error, since nothing would say which old version a user may get.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def floor(requirement: Requirement) -> Version:
    """The lowest version ``requirement`` allows: its ``>=``, ``==`` or ``~=`` bound."""
    lows = [Version(s.version) for s in requirement.specifier if s.operator in (">=", "==", "~=")]
    if not lows:
        raise ValueError(f"{requirement}: no lower bound; give it a floor in pyproject.toml (name>=X)")
    return max(lows)


def requirements(pyproject: Path, extras: list[str]) -> list[Requirement]:
    project = tomllib.loads(pyproject.read_text())["project"]
    optional = project.get("optional-dependencies", {})
    unknown = sorted(set(extras) - set(optional))
    if unknown:
        raise ValueError(
            f"no such extra in {pyproject.name}: {', '.join(unknown)} (have: {', '.join(optional)})"
        )
    texts = list(project["dependencies"]) + [text for extra in extras for text in optional[extra]]
    return [Requirement(text) for text in texts]


def constraint_lines(pyproject: Path, extras: list[str], pins: dict[str, str] | None = None) -> list[str]:
    """``name==floor`` (with the requirement's environment marker) for each direct dependency."""
    pins = {canonicalize_name(name): version for name, version in (pins or {}).items()}
    reqs = requirements(pyproject, extras)
    unknown = sorted(set(pins) - {canonicalize_name(req.name) for req in reqs})
    if unknown:
        raise ValueError(f"--pin {', '.join(unknown)}: not a direct dependency here")
    floors: dict[str, tuple[Version, str]] = {}
    for req in reqs:
        name = canonicalize_name(req.name)
        marker = f" ; {req.marker}" if req.marker else ""
        # Named twice (the dependencies and an extra): the higher floor is the lowest allowed.
        if name not in floors or floor(req) > floors[name][0]:
            floors[name] = (floor(req), marker)
    # Constraints take no extras: the name alone.
    return [f"{name}=={pins.get(name) or low}{marker}" for name, (low, marker) in floors.items()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("extras", nargs="*", help="optional-dependency groups to include (e.g. dev)")
    parser.add_argument("--pin", action="append", default=[], metavar="NAME==VERSION")
    args = parser.parse_args(argv)
    pins = dict(pin.split("==", 1) for pin in args.pin)
    try:
        print("\n".join(constraint_lines(PYPROJECT, args.extras, pins)))
    except ValueError as err:
        sys.exit(f"floors.py: {err}")


if __name__ == "__main__":
    main()
