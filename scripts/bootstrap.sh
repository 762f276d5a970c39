#!/usr/bin/env bash
# Creates .venv at the repo root and installs hewitt with its dev tools.
# Idempotent: re-running only re-syncs when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.hewitt-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check uv
    VIRTUAL_ENV="$PWD/.venv" .venv/bin/uv pip install --quiet -e ".[dev]"
    touch "$stamp"
fi
# Bytecode for the sources (an editable install has none, and with
# PYTHONDONTWRITEBYTECODE set every process would compile them again: a third of
# `import hewitt`, in every test that starts a process).
.venv/bin/python -m compileall -q src >/dev/null
