"""Shared fixtures: engines on the embedded exchange and the virtual clock, closed after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import cmc_lab as cmc


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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: builds environments or drives a browser (minutes); runs in CI's default pytest"
    )
