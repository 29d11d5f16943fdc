#!/usr/bin/env bash
# A virtual environment of its own for the blotter-table comparison: cmc_lab (editable) with the
# candidate tables that are not cmc_lab dependencies (ipydatagrid, perspective-python and the pyarrow it
# wants for pandas) and playwright. Usage: bash scripts/blotter/setup.sh [DIR]   (default .blotter-venv);
# then DIR/bin/python scripts/blotter/compare.py (needs Debian's chromium: apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")/../.."
dir="${1:-.blotter-venv}"
python3 -m venv "$dir"
"$dir/bin/pip" install --quiet -e . "playwright>=1.40" "ipydatagrid==1.4.0" "perspective-python==5.6.1" "pyarrow>=15"
"$dir/bin/python" -c "
from importlib.metadata import version
print(', '.join(f'{p} {version(p)}' for p in ('ipydatagrid', 'perspective-python', 'pyarrow', 'jupyterlab')), 'in', '$dir')"
