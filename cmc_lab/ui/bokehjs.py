"""BokehJS on the page: fetched from our Jupyter server route when it can be, else inlined in the output.

jupyter_bokeh's ``BokehModel`` views (and ``bokeh.io.show``) need ``window.Bokeh``; without it a
chart shows only "Could not create a view". bokeh's own ``output_notebook(resources=INLINE)``
puts all of BokehJS (bokeh, gl, widgets, tables, mathjax: 3.9 MB, twice, once per mime type)
in the output, so every executed notebook weighs about 8 MB. Where the notebook's page comes
from a Jupyter server running :mod:`cmc_lab.ui.server_ext`, the output instead holds a 1.8 kB
loader that fetches the same files from ``{base_url}cmc-lab/bokehjs/<version>/`` (offline: the
files come from the bokeh package installed next to the server, no CDN).

How the kernel knows
--------------------
The server extension puts ``CMC_LAB_BOKEHJS={base_url}cmc-lab/bokehjs/<version>/`` in the
server's environment, which every process it starts inherits; the Jupyter server also gives
each kernel it starts for a notebook or console ``JPY_SESSION_NAME``. The loader is used when
both are set and ``<version>`` is this kernel's bokeh version. Everywhere else BokehJS is
inlined, as before:

- nbclient / nbconvert ``--execute`` / nbval / papermill (CI, the notebook tests): the kernel has
  no ``JPY_SESSION_NAME``, and no server would answer the loader when the result is read later;
- a Jupyter server without the extension (``CMC_LAB_BOKEHJS`` unset), e.g. classic HTML export
  of a notebook executed there, VS Code's own kernels, a bare ``ipython``;
- a kernel whose bokeh differs from the server's (another environment's kernel): the served
  BokehJS would not match the Python side;
- ``CMC_LAB_BOKEHJS=inline`` set by hand, for a notebook that must render with no server at all
  (exported to HTML, opened by nbviewer) although it runs in JupyterLab.

The loader fetches the files synchronously (one blocking request per file, from the browser's
cache after the first page): BokehJS is then defined before the next output's widget view is
built, exactly as with inline code, and jupyter_bokeh's views need it in their constructor. It
takes the base URL from the page (``jupyter-config-data``, else ``<body data-base-url>``), so a
saved notebook reopened on another server with the extension (Binder, a hub's ``/user/<name>/``)
loads from that server.
A page that cannot fetch them says so in the output.

Examples
--------
>>> from cmc_lab.ui.bokehjs import bokehjs_source
>>> bokehjs_source()  # in a plain Python process
('inline', 'no Jupyter server running cmc_lab.ui.server_ext started this kernel (CMC_LAB_BOKEHJS unset)')
"""

from __future__ import annotations

import json
import os
import threading

#: Set by the server extension: the URL path (under the server's base_url) of the served files.
ENV = "CMC_LAB_BOKEHJS"
#: The route, under the server's ``base_url``; ``<version>/<file>`` follow.
ROUTE = "cmc-lab/bokehjs"
#: What the Jupyter server sets in the environment of each kernel it starts for a session.
SESSION_ENV = "JPY_SESSION_NAME"
LOAD_MIME = "application/vnd.bokehjs_load.v0+json"
JS_MIME = "application/javascript"

_sent = False

_LOADER = """(function (root) {
  "use strict";
  const version = %(version)s, files = %(files)s, fallback = %(base)s, route = %(route)s;
  const here = document.currentScript;
  if (root.Bokeh !== undefined && root._cmc_bokehjs === version) return;
  let base = fallback, page = document.body ? document.body.dataset.baseUrl : undefined;
  const config = document.getElementById("jupyter-config-data");
  if (config !== null) {
    try { page = JSON.parse(config.textContent).baseUrl; } catch (e) {}
  }
  if (page) base = page.replace(/\\/?$/, "/") + route + "/" + version + "/";
  for (const name of files) {
    const url = base + name, request = new XMLHttpRequest();
    let failure = null;
    try {
      request.open("GET", url, false);
      request.send();
      if (request.status !== 200) failure = "HTTP " + request.status;
    } catch (error) { failure = String(error); }
    if (failure !== null) {
      const message = "BokehJS " + version + " could not be loaded from " + url + " (" + failure +
        "): the charts need the Jupyter server that ran this notebook, with cmc_lab's server " +
        "extension; run the cell again there, or set CMC_LAB_BOKEHJS=inline before starting the kernel";
      if (here && here.parentNode) {
        const note = document.createElement("pre");
        note.className = "cmc-bokehjs-error";
        note.style.color = "#b00";
        note.textContent = message;
        here.parentNode.appendChild(note);
      }
      throw new Error(message);
    }
    const script = document.createElement("script");
    script.textContent = request.responseText + "\\n//# sourceURL=" + url;
    document.head.appendChild(script);
  }
  root._cmc_bokehjs = version;
})(window);
"""


def bokehjs_files() -> list[str]:
    """The minified files inline resources would embed: ``['bokeh.min.js', 'bokeh-gl.min.js', ...]``."""
    from bokeh.resources import Resources

    return [f"{name}.min.js" for name in Resources(mode="server").components_for("js")]


def bokehjs_source() -> tuple[str, str]:
    """``("served", url_path)`` when a server route can give this kernel's page BokehJS, else
    ``("inline", why not)``; the rules are in this module's docstring.

    Examples
    --------
    >>> bokehjs_source()  # in a JupyterLab notebook on a server with the extension  # doctest: +SKIP
    ('served', '/user/analyst/cmc-lab/bokehjs/3.9.2/')
    """
    from bokeh import __version__

    served = os.environ.get(ENV, "")
    if not served:
        return "inline", f"no Jupyter server running cmc_lab.ui.server_ext started this kernel ({ENV} unset)"
    if served == "inline":
        return "inline", f"{ENV}=inline"
    if not os.environ.get(SESSION_ENV):
        return "inline", (
            f"this kernel was not started by the Jupyter server for a notebook ({SESSION_ENV} unset): "
            "nbclient, nbconvert --execute and the like"
        )
    if not served.rstrip("/").endswith(f"/{ROUTE}/{__version__}"):
        return "inline", f"the Jupyter server serves BokehJS at {served}, this kernel has bokeh {__version__}"
    return "served", served


def loader_js(url_path: str) -> str:
    """The page-side loader of the served files (``url_path`` is the fallback when the page has no
    ``jupyter-config-data``)."""
    from bokeh import __version__

    return _LOADER % {
        "version": json.dumps(__version__),
        "files": json.dumps(bokehjs_files()),
        "base": json.dumps(url_path.rstrip("/") + "/"),
        "route": json.dumps(ROUTE),
    }


def publish_bokehjs() -> str:
    """Put BokehJS on the page now, served or inline (see :func:`bokehjs_source`); returns which."""
    mode, where = bokehjs_source()
    if mode == "inline":
        from bokeh.io.notebook import load_notebook
        from bokeh.resources import INLINE

        load_notebook(INLINE, hide_banner=True)
        return mode
    from IPython.display import publish_display_data

    js = loader_js(where)
    publish_display_data({JS_MIME: js, LOAD_MIME: js})
    return mode


def load_bokehjs() -> None:
    """Put BokehJS on the page once per kernel, before the first chart (served when it can be).

    Runs only in the kernel's main thread (cell output goes to the running cell) and only inside
    IPython; not at all after bokeh's own ``output_notebook`` (BokehJS is on the page already).
    """
    global _sent
    from bokeh.io import notebook

    if _sent or getattr(notebook, "_NOTEBOOK_LOADED", None) is not None:
        return
    if threading.current_thread() is not threading.main_thread():
        return
    from IPython import get_ipython

    if get_ipython() is None:
        return
    publish_bokehjs()
    _sent = True


def output_notebook() -> str:
    """bokeh's ``output_notebook`` for ``bokeh.io.show`` in a notebook, without 8 MB of inline
    BokehJS where our Jupyter server route can serve it; returns ``"served"`` or ``"inline"``.

    Use it instead of ``output_notebook(resources=INLINE)``.

    Examples
    --------
    >>> from cmc_lab.ui.bokehjs import output_notebook
    >>> output_notebook()  # doctest: +SKIP
    'served'
    """
    global _sent
    from bokeh.io.state import curstate

    curstate().output_notebook()
    mode = publish_bokehjs()
    _sent = True
    return mode
