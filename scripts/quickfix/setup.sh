#!/usr/bin/env bash
# A virtual environment of its own for the QuickFIX interop check (QuickFIX is not a cmc_lab
# dependency: pip builds its C++ engine from source, about 5 minutes on two cores).
# Usage: bash scripts/quickfix/setup.sh [DIR]   (default .quickfix-venv); then
#   DIR/bin/python scripts/quickfix/interop.py --cmc-python .venv/bin/python
#   CMC_LAB_QUICKFIX_PYTHON=DIR/bin/python pytest tests/test_fix_quickfix.py
set -euo pipefail
dir="${1:-.quickfix-venv}"
python3 -m venv "$dir"
"$dir/bin/pip" install --quiet "quickfix==1.16.0"
"$dir/bin/python" -c "import quickfix; print('quickfix in', '$dir')"
