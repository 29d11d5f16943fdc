"""Front-end assets: our widget files (cmc_lab/_widgets in a wheel, ../widgets in a checkout) and BokehJS."""

from __future__ import annotations

import threading
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent
_bokehjs_sent = False


def widgets_dir() -> Path:
    for candidate in (_PACKAGE / "_widgets", _PACKAGE.parent / "widgets"):
        if (candidate / "killswitch.js").is_file():
            return candidate
    raise FileNotFoundError(
        "cannot find the widgets/ front-end files; reinstall cmc-lab (pip install -e . from a clone)"
    )


def asset(name: str) -> Path:
    return widgets_dir() / name


def load_bokehjs() -> None:
    """Put BokehJS (inline: works offline) on the page once per kernel, before the first chart.

    jupyter_bokeh's ``BokehModel`` views need ``window.Bokeh``; without it a chart shows only
    "Could not create a view". Runs only in the kernel's main thread (cell output goes to the
    running cell) and only inside IPython.
    """
    global _bokehjs_sent
    if _bokehjs_sent or threading.current_thread() is not threading.main_thread():
        return
    from IPython import get_ipython

    if get_ipython() is None:
        return
    from bokeh.io import output_notebook
    from bokeh.resources import INLINE

    output_notebook(resources=INLINE, hide_banner=True)
    _bokehjs_sent = True
