"""Reading what an engine left behind in tests: an audit pack's CSV member, and a close that expects exposure."""

from __future__ import annotations

import csv
import io
import warnings
import zipfile
from pathlib import Path

import cmc_lab as cmc


def pack_table(pack: Path, name: str) -> list[dict[str, str]]:
    """One CSV member of an audit pack as rows of text."""
    with zipfile.ZipFile(pack) as zf:
        return list(csv.DictReader(io.StringIO(zf.read(name).decode())))


def close_quietly(eng: cmc.Engine) -> None:
    """Close an engine that may hold positions: the OpenExposureWarning is expected here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eng.close()
