"""Tests for cmc_lab.core.clock: real and virtual clocks and the virtual-time event loop."""

from __future__ import annotations

import asyncio
import selectors
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from cmc_lab.core.clock import SIM_START_NS, RealClock, VirtualClock, VirtualTimeLoop, make_clock

SECOND = 1_000_000_000


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def loop(clock: VirtualClock) -> Iterator[asyncio.AbstractEventLoop]:
    loop = clock.new_loop()
    yield loop
    loop.close()


# ------------------------------------------------------------------------ RealClock


def test_real_clock_unanchored_follows_wall_clock() -> None:
    clock = RealClock()
    before = time.time_ns()
    now = clock.now_ns()
    after = time.time_ns()
    assert before <= now <= after
    assert not clock.virtual


def test_real_clock_anchored_starts_at_start_and_runs_at_real_speed() -> None:
    before = time.perf_counter_ns()
    clock = RealClock(start_ns=SIM_START_NS)
    first = clock.now_ns()
    time.sleep(0.01)
    second = clock.now_ns()
    elapsed = time.perf_counter_ns() - before
    assert SIM_START_NS <= first <= second <= SIM_START_NS + elapsed, "no more time passed than really did"
    assert second - first >= 9_000_000  # the 10 ms sleep: time.sleep never returns early


def test_real_clock_mono_ns_is_monotonic() -> None:
    clock = RealClock()
    stamps = [clock.mono_ns() for _ in range(1000)]
    assert stamps == sorted(stamps)
    assert stamps[-1] >= stamps[0]


def test_real_clock_advance_just_awaits() -> None:
    clock = RealClock()
    loop = clock.new_loop()
    try:
        assert not isinstance(loop, VirtualTimeLoop)
        assert loop.run_until_complete(clock.advance(asyncio.sleep(0, result="done"))) == "done"
    finally:
        loop.close()


def test_real_clock_repr() -> None:
    assert repr(RealClock()) == "RealClock()"
    assert repr(RealClock(SIM_START_NS)) == "RealClock(anchored)"


# ------------------------------------------------------------------------ VirtualClock


def test_sim_start_is_tuesday_evening_in_shanghai() -> None:
    start = datetime.fromtimestamp(SIM_START_NS // SECOND, tz=UTC)
    assert start == datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
    assert start.strftime("%A") == "Tuesday"
    assert SIM_START_NS % SECOND == 0


def test_virtual_clock_before_a_loop_stands_at_start(clock: VirtualClock) -> None:
    assert clock.virtual
    assert clock.mono_ns() == 0
    assert clock.now_ns() == SIM_START_NS


def test_virtual_loop_time_starts_at_zero(clock: VirtualClock, loop: asyncio.AbstractEventLoop) -> None:
    assert isinstance(loop, VirtualTimeLoop)
    assert loop.time() == 0.0
    assert clock.now_ns() == SIM_START_NS


@pytest.fixture
def real_waits(monkeypatch: pytest.MonkeyPatch) -> list[float | None]:
    """Every timeout the virtual loop hands to the real selector (0: a poll; more: a real wait)."""
    waits: list[float | None] = []
    real_select = selectors.DefaultSelector.select

    def select(self: selectors.BaseSelector, timeout: float | None = None) -> list[Any]:
        waits.append(timeout)
        return real_select(self, timeout)  # type: ignore[arg-type]

    monkeypatch.setattr(selectors.DefaultSelector, "select", select)
    return waits


def test_advance_through_an_hour_sleep_never_waits_in_real_time_and_is_exact(
    clock: VirtualClock, loop: asyncio.AbstractEventLoop, real_waits: list[float | None]
) -> None:
    loop.run_until_complete(clock.advance(asyncio.sleep(3600)))
    assert real_waits and set(real_waits) == {0}, "the loop slept instead of jumping to its timer"
    assert clock.now_ns() == SIM_START_NS + 3600 * SECOND
    assert clock.mono_ns() == 3600 * SECOND
    assert loop.time() == 3600.0


def test_advance_returns_the_awaitables_result(clock: VirtualClock, loop: asyncio.AbstractEventLoop) -> None:
    assert loop.run_until_complete(clock.advance(asyncio.sleep(5, result=42))) == 42


def test_advance_propagates_the_awaitables_exception(
    clock: VirtualClock, loop: asyncio.AbstractEventLoop
) -> None:
    async def fail_later() -> None:
        await asyncio.sleep(10)
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        loop.run_until_complete(clock.advance(fail_later()))
    assert loop.time() == 10.0
    assert isinstance(loop, VirtualTimeLoop) and loop.advancing == 0


def test_timers_fire_in_order_at_their_virtual_times(
    clock: VirtualClock, loop: asyncio.AbstractEventLoop
) -> None:
    fired: list[tuple[str, float]] = []

    def record(name: str) -> None:
        fired.append((name, loop.time()))

    for name, delay in [("c", 5.0), ("a", 1.0), ("d", 3600.0), ("b", 2.5)]:
        loop.call_later(delay, record, name)
    loop.run_until_complete(clock.advance(asyncio.sleep(7200)))
    assert [name for name, _ in fired] == ["a", "b", "c", "d"]
    assert [when for _, when in fired] == pytest.approx([1.0, 2.5, 5.0, 3600.0], abs=1e-9)
    assert loop.time() == 7200.0


def test_asyncio_timeout_uses_virtual_time(
    clock: VirtualClock, loop: asyncio.AbstractEventLoop, real_waits: list[float | None]
) -> None:
    async def slow() -> None:
        await asyncio.wait_for(asyncio.sleep(600), timeout=30)

    with pytest.raises(TimeoutError):
        loop.run_until_complete(clock.advance(slow()))
    assert real_waits and set(real_waits) == {0}, "the loop slept instead of jumping to its timer"
    assert loop.time() == pytest.approx(30.0)


def test_time_does_not_advance_outside_advance(clock: VirtualClock, loop: asyncio.AbstractEventLoop) -> None:
    fired: list[float] = []
    loop.call_later(1000, lambda: fired.append(loop.time()))
    for _ in range(5):
        loop.run_until_complete(asyncio.sleep(0))
    assert loop.time() == 0.0
    assert clock.now_ns() == SIM_START_NS
    assert fired == []


def test_time_stands_still_between_advances(clock: VirtualClock, loop: asyncio.AbstractEventLoop) -> None:
    fired: list[float] = []
    loop.call_later(100, lambda: fired.append(loop.time()))
    loop.run_until_complete(clock.advance(asyncio.sleep(10)))
    for _ in range(3):
        loop.run_until_complete(asyncio.sleep(0))
    assert loop.time() == 10.0
    assert fired == []
    loop.run_until_complete(clock.advance(asyncio.sleep(200)))
    assert fired == [pytest.approx(100.0)]
    assert loop.time() == 210.0


def test_advance_on_another_loop_is_refused(clock: VirtualClock, loop: asyncio.AbstractEventLoop) -> None:
    other = asyncio.new_event_loop()
    try:
        with pytest.raises(RuntimeError, match="must run on the clock's own loop"):
            other.run_until_complete(clock.advance(asyncio.sleep(1)))
    finally:
        other.close()
    assert loop.time() == 0.0


def test_advance_before_a_loop_exists_is_refused() -> None:
    clock = VirtualClock()
    other = asyncio.new_event_loop()
    try:
        with pytest.raises(RuntimeError, match=r"made by clock\.new_loop\(\)"):
            other.run_until_complete(clock.advance(asyncio.sleep(1)))
    finally:
        other.close()


def test_call_from_another_thread_wakes_a_paused_loop(
    clock: VirtualClock, loop: asyncio.AbstractEventLoop
) -> None:
    loop.call_later(10_000, lambda: None)  # a timer far ahead: the paused loop must not jump to it
    running = threading.Event()
    loop.call_soon(running.set)
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        assert running.wait(1.0)
        time.sleep(0.02)  # let the loop go idle in its selector
        woke = threading.Event()
        seen: list[float] = []

        def callback() -> None:
            seen.append(loop.time())
            woke.set()

        loop.call_soon_threadsafe(callback)
        assert woke.wait(1.0), "a call from another thread did not wake the paused loop"
        assert seen == [0.0]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(2.0)
    assert not thread.is_alive()
    assert loop.time() == 0.0


def test_advance_submitted_from_another_thread_runs_virtual_time(
    clock: VirtualClock, loop: asyncio.AbstractEventLoop
) -> None:
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        future = asyncio.run_coroutine_threadsafe(clock.advance(asyncio.sleep(60, result="ok")), loop)
        assert future.result(timeout=1.0) == "ok"
        assert clock.now_ns() == SIM_START_NS + 60 * SECOND
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(2.0)
    assert not thread.is_alive()


def test_virtual_clock_custom_start_and_repr(clock: VirtualClock, loop: asyncio.AbstractEventLoop) -> None:
    custom = VirtualClock(start_ns=123 * SECOND)
    assert custom.now_ns() == 123 * SECOND
    assert repr(clock) == "VirtualClock(t+0.000s)"
    loop.run_until_complete(clock.advance(asyncio.sleep(1.5)))
    assert repr(clock) == "VirtualClock(t+1.500s)"


# ------------------------------------------------------------------------ make_clock


def test_make_clock_real_is_anchored_at_sim_start_by_default() -> None:
    clock = make_clock("real")
    assert isinstance(clock, RealClock)
    assert SIM_START_NS <= clock.now_ns() < SIM_START_NS + SECOND


def test_make_clock_real_without_start_follows_wall_clock() -> None:
    clock = make_clock("real", start_ns=None)
    assert isinstance(clock, RealClock)
    assert abs(clock.now_ns() - time.time_ns()) < SECOND


def test_make_clock_virtual() -> None:
    clock = make_clock("virtual")
    assert isinstance(clock, VirtualClock)
    assert clock.now_ns() == SIM_START_NS
    assert make_clock("virtual", start_ns=None).now_ns() == SIM_START_NS
    assert make_clock("virtual", start_ns=7 * SECOND).now_ns() == 7 * SECOND


@pytest.mark.parametrize("kind", ["wall", "Virtual", "", "sim"])
def test_make_clock_refuses_unknown_kind_naming_the_choices(kind: str) -> None:
    with pytest.raises(ValueError, match=r"is not known; use 'real' \(notebooks\) or 'virtual' \(tests\)"):
        make_clock(kind)
