#!/usr/bin/env bash
# Set up (into the active virtualenv, or a new .venv) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${VIRTUAL_ENV:-}" ]; then
  python3 -m venv .venv
  . .venv/bin/activate
fi
python -m pip install -q --upgrade pip
python -m pip install -q -e '.[test]'
python -m pytest tests "$@"
