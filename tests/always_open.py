"""Instrument overrides for tests that must trade at any hour; import from here, not from conftest
(pytest may load another conftest under that module name first)."""

from __future__ import annotations

#: Instrument overrides that open the gold and FX sessions all day, every day (tests at any hour).
ALWAYS_OPEN_TOML = """
[sessions.shfe_precious]
timezone = "UTC"
windows = [{ name = "all", open = "00:00", close = "00:00", days = "mon-sun" }]
[sessions.cme_globex]
timezone = "UTC"
windows = [{ name = "all", open = "00:00", close = "00:00", days = "mon-sun" }]
[sessions.fx_24x5]
timezone = "UTC"
windows = [{ name = "all", open = "00:00", close = "00:00", days = "mon-sun" }]
"""
