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
# The dashboard's browser test wants Debian's chromium + chromedriver: install them when
# missing and apt-get can (best effort, quiet; the test skips with a reason otherwise).
if ! command -v chromedriver >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
      chromium chromium-driver; } >/dev/null 2>&1 || echo "note: could not install chromium" \
      "(the dashboard browser test will be skipped)" >&2
fi
python -m pytest tests "$@"
