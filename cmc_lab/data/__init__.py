"""Quote history as xarray: the recorder and stores, research helpers, synthetic quotes (no engine here)."""

from cmc_lab.data.history import (
    QUOTE_VARS,
    QuoteDataError,
    align,
    asof,
    distribution,
    half_life,
    quotes_dataset,
    rolling_z,
    session_labels,
    spread_def,
    spread_series,
    synthetic_quotes,
)
from cmc_lab.data.recorder import Recorder, RecorderError, open_quotes, save_quotes

__all__ = [
    "QUOTE_VARS",
    "QuoteDataError",
    "Recorder",
    "RecorderError",
    "align",
    "asof",
    "distribution",
    "half_life",
    "open_quotes",
    "quotes_dataset",
    "rolling_z",
    "save_quotes",
    "session_labels",
    "spread_def",
    "spread_series",
    "synthetic_quotes",
]
