"""The workbench blotter without a browser: rows after a fill, Cancel through the button, coalescing."""

from __future__ import annotations

import cmc_lab as cmc
from cmc_lab.ui.blotter import Blotter
from cmc_lab.ui.workbench import Workbench


def click(button: object) -> None:
    button._click_handlers(button)  # type: ignore[attr-defined]  # what a browser click runs


def test_a_fill_shows_in_positions_and_fills(eng: cmc.Engine) -> None:
    blotter = Blotter(eng, start=False)
    assert "flat: no positions" in blotter.positions.value and "no fills yet" in blotter.fills.value
    q = eng.quote("COMEX.GC")
    order = eng.submit("COMEX.GC", "buy", 2, price=str(q.ask), tif="IOC")
    order.wait(5)
    blotter.refresh()
    assert "COMEX.GC" in blotter.positions.value and "long 2" in blotter.positions.value
    assert order.client_order_id in blotter.fills.value


def test_a_working_order_appears_then_leaves_after_cancel_from_its_button(eng: cmc.Engine) -> None:
    blotter = Blotter(eng, start=False)
    order = eng.submit("SHFE.au", "buy", 2, price="914.52")
    eng.sleep(0.5)
    blotter.refresh()
    assert list(blotter.rows) == [order.client_order_id]
    assert "buy 2 @ 914.52" in blotter.rows[order.client_order_id].label.value
    click(blotter.rows[order.client_order_id].cancel)
    assert order.wait(5) is cmc.OrderState.CANCELED
    blotter.refresh()
    assert blotter.rows == {} and "no working orders" in blotter.orders.children[0].value


def test_cancel_of_a_reducing_order_works_when_killed(eng: cmc.Engine) -> None:
    q = eng.quote("COMEX.GC")
    eng.submit("COMEX.GC", "buy", 2, price=str(q.ask), tif="IOC").wait(5)
    blotter = Blotter(eng, start=False)
    eng.kill("test: blotter cancel while killed")
    reducing = eng.submit("COMEX.GC", "sell", 1, price=str(round(q.ask * 1.05, 1)))
    eng.sleep(0.5)
    blotter.refresh()
    assert reducing.client_order_id in blotter.rows, reducing.reason
    click(blotter.rows[reducing.client_order_id].cancel)
    assert reducing.wait(5) is cmc.OrderState.CANCELED


def test_a_quote_storm_sends_one_update_per_changed_section_per_tick(eng: cmc.Engine) -> None:
    blotter = Blotter(eng, start=False)
    for i in range(20):
        eng.submit("SHFE.au", "buy", 1, price=f"{920 + i * 0.02:.2f}")
    eng.sleep(0.5)
    blotter.refresh()
    sent: list[str] = []
    for widget in [
        blotter.positions,
        blotter.fills,
        blotter.tickets,
        *(r.label for r in blotter.rows.values()),
    ]:
        widget.observe(lambda change: sent.append(change["name"]), names="value")
    eng.sleep(1.0)  # a second of quotes: nothing the blotter shows changes
    for _ in range(10):
        blotter.refresh()
    assert sent == []
    assert len(blotter.orders.children) == 20


def test_the_workbench_has_the_blotter_below_its_panels(eng: cmc.Engine) -> None:
    wb = Workbench(eng)
    assert isinstance(wb.blotter, Blotter) and wb.widget.children[-1] is wb.blotter.widget
