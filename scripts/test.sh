#!/usr/bin/env bash
# Set up and run every test from nothing: the venv with the dev extras (playwright included),
# Debian's chromium for the browser test (installed when this user may; otherwise says how),
# then pytest: the unit tests, the browser test and the notebooks. Extra arguments go to pytest.
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

exec .venv/bin/python -m pytest "$@"
