#!/usr/bin/env bash
# Lowest-versions lane (.ci/run runs it after the main lane; run it alone with a Python that has
# `packaging`, e.g. the main .venv active). Every direct dependency, the dev extra's included, is
# pinned at the floor that pyproject.toml states (.ci/floors.py writes the pins) and the rest is
# resolved as a user's fresh install resolves it; then the fast tests run. A floor the code does
# not run on fails here.
# torch==<floor> comes from PyPI as the CUDA build (about 3 GB more to fetch and unpack, a few
# minutes): PyPI has no CPU-only build of an old torch, and no other index is reachable from CI.
set -euo pipefail
cd "$(dirname "$0")/.."

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python .ci/floors.py dev > "$work/floors.txt"
echo "lowest versions: $(tr '\n' ' ' < "$work/floors.txt")"
python3 -m venv "$work/venv"
. "$work/venv/bin/activate"
python -m pip install --quiet --upgrade pip
pip install --quiet -c "$work/floors.txt" -e '.[dev]'
python -m pytest -q -m "not slow"
