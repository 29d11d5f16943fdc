"""cmc_lab: a Jupyter-native workbench for cross-market (inner/outer market) arbitrage.

>>> import cmc_lab as cmc
>>> eng = cmc.connect("sim", seed=7, journal="run.sqlite")   # doctest: +SKIP
"""

from cmc_lab.core.model import OrderState, Quote, Side, TimeInForce
from cmc_lab.core.order import Order, OrderNotWorking
from cmc_lab.core.trading import TradingState
from cmc_lab.engine.connect import UnsupportedVenue, connect
from cmc_lab.engine.errors import (
    EngineClosed,
    EngineError,
    InvalidOrder,
    NoQuote,
    OpenExposureWarning,
    TradingRefused,
)
from cmc_lab.engine.facade import Engine

__version__ = "0.1.0"


def workbench(engine: Engine, spread: str | None = None) -> object:
    """The notebook dashboard (kill switch, spread monitor, ticket, alerts); Jupyter only."""
    from cmc_lab.ui.workbench import workbench as make

    return make(engine, spread)


def output_notebook() -> str:
    """bokeh's ``output_notebook`` for ``bokeh.io.show``, BokehJS served by the Jupyter server when
    it can be (a few kB in the saved notebook), else inline (8 MB); returns ``"served"`` or ``"inline"``.
    Where each is used: :mod:`cmc_lab.ui.bokehjs`."""
    from cmc_lab.ui.bokehjs import output_notebook as load

    return load()


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext cmc_lab`` registers the ``%cmc`` magics."""
    from cmc_lab.ui.magics import load_ipython_extension as load

    load(ipython)


__all__ = [
    "Engine",
    "EngineClosed",
    "EngineError",
    "InvalidOrder",
    "NoQuote",
    "OpenExposureWarning",
    "Order",
    "OrderNotWorking",
    "OrderState",
    "Quote",
    "Side",
    "TimeInForce",
    "TradingRefused",
    "TradingState",
    "UnsupportedVenue",
    "__version__",
    "connect",
    "load_ipython_extension",
    "output_notebook",
    "workbench",
]
