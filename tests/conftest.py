"""Shared fixtures: engines on the embedded exchange and the virtual clock, closed after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from always_open import ALWAYS_OPEN_TOML

import cmc_lab as cmc


@pytest.fixture
def open_hours(tmp_path: Path) -> Path:
    """An instruments file for ``cmc.connect(instruments=...)`` with :data:`ALWAYS_OPEN_TOML`."""
    path = tmp_path / "always_open.toml"
    path.write_text(ALWAYS_OPEN_TOML)
    return path


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    return tmp_path / "run.sqlite"


@pytest.fixture
def make_engine() -> Iterator[Callable[..., cmc.Engine]]:
    """``make_engine(**connect_kwargs)``: seed 7, virtual clock unless given; closed at teardown."""
    engines: list[cmc.Engine] = []

    def make(target: str = "sim", **kwargs: Any) -> cmc.Engine:
        kwargs.setdefault("seed", 7)
        kwargs.setdefault("clock", "virtual")
        engine = cmc.connect(target, **kwargs)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


@pytest.fixture
def eng(make_engine: Callable[..., cmc.Engine], journal_path: Path) -> cmc.Engine:
    """``cmc.connect("sim", seed=7, clock="virtual", journal=tmp_path / "run.sqlite")``."""
    return make_engine(journal=journal_path)


@pytest.fixture
def au_gc(eng: cmc.Engine) -> cmc.Engine:
    """``eng`` with the gold spread defined (SHFE au against COMEX GC); a module of ticket tests
    uses it with ``pytestmark = pytest.mark.usefixtures("au_gc")``."""
    eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})
    return eng


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: builds environments or drives a browser (minutes); runs in CI's default pytest"
    )
