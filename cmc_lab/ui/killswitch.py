"""The kill-switch panel: an anywidget whose ES module calls the engine's side channel, not the kernel.

The press goes through the Jupyter server's ``cmc-lab`` route (``cmc_lab.ui.server_ext``) when
the server has it, else straight to the side channel's loopback port.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import anywidget
import traitlets

from cmc_lab.ui.assets import asset
from cmc_lab.ui.sidechannel import SideChannel

if TYPE_CHECKING:
    from cmc_lab.engine.facade import Engine


class KillSwitch(anywidget.AnyWidget):
    """Always-visible kill switch with the trading state; works while the kernel is busy.

    A press POSTs to a loopback endpoint the engine serves with a per-session secret, so it
    does not wait behind a running cell: through the notebook server's ``{base_url}cmc-lab/kill/<port>``
    route (same origin as the page, so it works on Binder and JupyterHub), or directly to ``url``
    when that route is missing (404). ``state`` and ``working_orders`` mirror the engine.

    The secret is not a widget trait, so it is never saved with the widget state into the
    notebook: each page load asks for it in a custom message (``{"ask": "token"}``) and keeps
    the answer in memory only.

    Examples
    --------
    >>> KillSwitch(eng)          # doctest: +SKIP
    """

    _esm = asset("killswitch.js")
    _css = asset("cmc.css")
    url = traitlets.Unicode("").tag(sync=True)
    reason = traitlets.Unicode("kill switch pressed in the workbench").tag(sync=True)
    state = traitlets.Unicode("ACTIVE").tag(sync=True)
    working_orders = traitlets.Int(0).tag(sync=True)

    def __init__(self, engine: Engine, **kwargs: object) -> None:
        channel = side_channel(engine)
        super().__init__(url=channel.url, state=engine.trading_state.value, **kwargs)
        self.channel = channel
        self.on_msg(self._answer)

    @property
    def token(self) -> str:
        """The side channel's secret (kernel side only; the page gets it by message)."""
        return self.channel.token

    def _answer(self, _: object, content: object, buffers: object) -> None:
        if isinstance(content, dict) and content.get("ask") == "token":
            self.send({"token": self.channel.token})


def side_channel(engine: Engine) -> SideChannel:
    """The engine's one side channel, started on first use and closed with the engine."""
    channel = _CHANNELS.get(engine)
    if channel is None:
        channel = _CHANNELS[engine] = SideChannel(engine)
        engine.on_close(channel.close)
    return channel


_CHANNELS: weakref.WeakKeyDictionary[Engine, SideChannel] = weakref.WeakKeyDictionary()
