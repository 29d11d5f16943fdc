"""Front-end assets: our widget files (cmc_lab/_widgets in a wheel, ../widgets in a checkout); BokehJS is bokehjs.py."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent


def widgets_dir() -> Path:
    for candidate in (_PACKAGE / "_widgets", _PACKAGE.parent / "widgets"):
        if (candidate / "killswitch.js").is_file():
            return candidate
    raise FileNotFoundError(
        "cannot find the widgets/ front-end files; reinstall cmc-lab (pip install -e . from a clone)"
    )


def asset(name: str) -> Path:
    return widgets_dir() / name
