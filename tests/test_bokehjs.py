"""BokehJS served by our Jupyter server route instead of 8 MB inline in every output (issue 17): when the
kernel uses the loader, when it inlines, and the route in a real ``jupyter server``."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bokeh import __version__ as BOKEH
from bokeh.util.paths import static_path
from jupyter_server_fixture import BASE_URL, Server, jupyter_server

import cmc_lab as cmc
from cmc_lab.ui import bokehjs

SERVED = f"{BASE_URL}cmc-lab/bokehjs/{BOKEH}/"


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What the kernel would put in the cell's output (IPython's publish_display_data, captured)."""
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(
        "IPython.display.publish_display_data", lambda data, *a, **kw: sent.append(dict(data))
    )
    return sent


def served_by_a_server(monkeypatch: pytest.MonkeyPatch, path: str = SERVED) -> None:
    """The environment the Jupyter server gives a kernel it starts for a notebook."""
    monkeypatch.setenv(bokehjs.ENV, path)
    monkeypatch.setenv(bokehjs.SESSION_ENV, "/home/analyst/02_spreads_and_triggers.ipynb")


def test_a_kernel_started_by_a_server_with_the_extension_uses_the_served_bokehjs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served_by_a_server(monkeypatch)
    assert bokehjs.bokehjs_source() == ("served", SERVED)


def test_without_the_extension_bokehjs_is_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(bokehjs.ENV, raising=False)
    monkeypatch.setenv(bokehjs.SESSION_ENV, "/home/analyst/nb.ipynb")
    mode, why = bokehjs.bokehjs_source()
    assert mode == "inline" and "CMC_LAB_BOKEHJS unset" in why


def test_a_kernel_nbclient_started_inlines_bokehjs_even_under_a_server_with_the_extension(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # e.g. jupyter nbconvert --execute in a JupyterLab terminal: it inherits CMC_LAB_BOKEHJS, not a session
    monkeypatch.setenv(bokehjs.ENV, SERVED)
    monkeypatch.delenv(bokehjs.SESSION_ENV, raising=False)
    mode, why = bokehjs.bokehjs_source()
    assert mode == "inline" and "nbclient" in why


def test_a_kernel_whose_bokeh_differs_from_the_servers_inlines_bokehjs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served_by_a_server(monkeypatch, f"{BASE_URL}cmc-lab/bokehjs/0.0.1/")
    mode, why = bokehjs.bokehjs_source()
    assert mode == "inline" and f"this kernel has bokeh {BOKEH}" in why


def test_cmc_lab_bokehjs_inline_forces_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    served_by_a_server(monkeypatch, "inline")
    assert bokehjs.bokehjs_source() == ("inline", "CMC_LAB_BOKEHJS=inline")


def test_the_served_loader_is_a_few_kilobytes_where_inline_is_megabytes(
    monkeypatch: pytest.MonkeyPatch, published: list[dict[str, Any]]
) -> None:
    served_by_a_server(monkeypatch)
    assert bokehjs.publish_bokehjs() == "served"
    monkeypatch.delenv(bokehjs.ENV)
    assert bokehjs.publish_bokehjs() == "inline"
    served, inline = (len(json.dumps(data)) for data in published)
    assert served < 5_000, served
    assert inline > 3_000_000, inline
    assert set(published[0]) == {bokehjs.JS_MIME, bokehjs.LOAD_MIME}
    loader = published[0][bokehjs.LOAD_MIME]
    for name in ("bokeh.min.js", "bokeh-widgets.min.js", "bokeh-tables.min.js", "bokeh-gl.min.js"):
        assert f'"{name}"' in loader
    assert json.dumps(SERVED) in loader and json.dumps(BOKEH) in loader
    assert "jupyter-config-data" in loader, (
        "the page's own base_url comes first (a notebook reopened elsewhere)"
    )


def test_output_notebook_sends_bokeh_show_to_the_notebook(
    monkeypatch: pytest.MonkeyPatch, published: list[dict[str, Any]]
) -> None:
    from bokeh.io.state import curstate

    served_by_a_server(monkeypatch)
    monkeypatch.setattr(curstate(), "_notebook", False)
    monkeypatch.setattr(bokehjs, "_sent", False)
    assert cmc.output_notebook() == "served"
    assert curstate().notebook
    assert len(published) == 1


def test_load_bokehjs_after_bokehs_own_output_notebook_sends_nothing(
    monkeypatch: pytest.MonkeyPatch, published: list[dict[str, Any]]
) -> None:
    """Notebook 05 called output_notebook(resources=INLINE), then a receipt chart inlined BokehJS again: 16 MB."""
    from bokeh.io import notebook
    from bokeh.resources import INLINE

    monkeypatch.setattr("IPython.get_ipython", lambda: object())
    monkeypatch.setattr(bokehjs, "_sent", False)
    monkeypatch.setattr(notebook, "_NOTEBOOK_LOADED", INLINE)
    bokehjs.load_bokehjs()
    assert published == []
    monkeypatch.setattr(notebook, "_NOTEBOOK_LOADED", None)
    bokehjs.load_bokehjs()
    bokehjs.load_bokehjs()
    assert len(published) == 1, "once per kernel"


# --- the route, in a real jupyter server: {base_url}cmc-lab/bokehjs/<version>/<file> -------------------


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with jupyter_server(tmp_path_factory.mktemp("jupyter-server-bokehjs")) as server:
        yield server


def get(server: Server, path: str, auth: bool = True) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(f"{server.url}{path}")
    if auth:
        request.add_header("Authorization", f"token {server.token}")
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=15) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@pytest.mark.parametrize("name", ["bokeh.min.js", "bokeh-widgets.min.js", "bokeh-mathjax.min.js"])
def test_the_route_serves_the_servers_own_bokehjs_files(jupyter: Server, name: str) -> None:
    status, body, headers = get(jupyter, f"cmc-lab/bokehjs/{BOKEH}/{name}")
    assert status == 200
    assert body == (Path(static_path()) / "js" / name).read_bytes()
    assert headers["Content-Type"] == "application/javascript"
    assert headers["Cache-Control"] == "max-age=31536000", "the path names the version: cache it"


@pytest.mark.parametrize(
    "path",
    [
        "cmc-lab/bokehjs/0.0.1/bokeh.min.js",
        f"cmc-lab/bokehjs/{BOKEH}/compiler.js",
        f"cmc-lab/bokehjs/{BOKEH}/bokeh.js",
        f"cmc-lab/bokehjs/{BOKEH}/lib/lib.dom.d.ts",
    ],
)
def test_the_route_serves_nothing_else(jupyter: Server, path: str) -> None:
    assert get(jupyter, path)[0] == 404


def test_the_route_needs_jupyter_authentication(jupyter: Server) -> None:
    status, body, headers = get(jupyter, f"cmc-lab/bokehjs/{BOKEH}/bokeh.min.js", auth=False)
    assert status in (302, 403) and b"Bokeh" not in body, (status, headers)


def test_a_kernel_the_server_starts_for_a_notebook_gets_the_loaders_environment(jupyter: Server) -> None:
    """Measured, not assumed: the environment of the kernel process a notebook session starts."""
    request = urllib.request.Request(
        f"{jupyter.url}api/sessions",
        data=json.dumps(
            {"path": "env.ipynb", "type": "notebook", "name": "env.ipynb", "kernel": {"name": "python3"}}
        ).encode(),
        method="POST",
        headers={"Authorization": f"token {jupyter.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        session = json.loads(response.read())
    try:
        deadline = time.monotonic() + 20
        environ: dict[str, str] = {}
        while not environ and time.monotonic() < deadline:
            for child in Path(f"/proc/{jupyter.pid}/task/{jupyter.pid}/children").read_text().split():
                raw = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
                pairs = dict(item.decode(errors="replace").partition("=")[::2] for item in raw if item)
                if pairs.get(bokehjs.SESSION_ENV, "").endswith("env.ipynb"):
                    environ = pairs
            time.sleep(0.2)
        assert environ, "no kernel process with the notebook's JPY_SESSION_NAME under the server"
        assert environ[bokehjs.ENV] == SERVED
    finally:
        urllib.request.urlopen(
            urllib.request.Request(
                f"{jupyter.url}api/sessions/{session['id']}",
                method="DELETE",
                headers={"Authorization": f"token {jupyter.token}"},
            ),
            timeout=30,
        ).close()
