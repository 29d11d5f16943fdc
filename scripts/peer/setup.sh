#!/usr/bin/env bash
# A virtual environment of its own for the peer comparison (nautilus_trader is not a cmc_lab
# dependency). Usage: bash scripts/peer/setup.sh [DIR]   (default .peer-venv); then
#   cmc-lab bench --peer DIR/bin/python
set -euo pipefail
dir="${1:-.peer-venv}"
python3 -m venv "$dir"
"$dir/bin/pip" install --quiet "nautilus_trader==1.221.0"
"$dir/bin/python" -c "import nautilus_trader; print('nautilus_trader', nautilus_trader.__version__, 'in', '$dir')"
