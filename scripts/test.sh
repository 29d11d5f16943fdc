#!/usr/bin/env bash
# Set up and run every test from nothing: the venv with the dev extras (playwright included),
# Debian's chromium for the browser test (installed when this user may; otherwise says how),
# QuickFIX for the FIX interop test (built once into .quickfix-venv), then pytest: the unit tests, the browser test and the notebooks. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1

python3 -m venv .venv
.venv/bin/pip install -q -e ".[dev]"

if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    echo "== installing Debian's chromium for the browser test"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    echo "== installing Debian's chromium for the browser test"
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "the browser test needs Debian's chromium and this user cannot install it:" >&2
    echo "    sudo apt-get install chromium      # then run this script again" >&2
  fi
fi

# QuickFIX, the independent FIX engine of the interop test, in a venv of its own (pip builds its
# C++ engine from source: about 5 minutes on two cores, the first time only).
if ! .quickfix-venv/bin/python -c "import quickfix" 2>/dev/null; then
  echo "== building QuickFIX for the FIX interop test (about 5 minutes, once)"
  bash scripts/quickfix/setup.sh .quickfix-venv
fi
export CMC_LAB_QUICKFIX_PYTHON="$PWD/.quickfix-venv/bin/python"

exec .venv/bin/python -m pytest "$@"
