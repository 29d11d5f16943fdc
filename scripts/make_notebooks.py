"""Write the shipped notebooks from their cell sources (outputs stripped, kernel python3)."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent.parent / "notebooks"


def cells_01() -> list:
    return [
        new_markdown_cell(
            "# cmc_lab quickstart\n\n"
            "Connect to every venue on the **embedded exchange** (simulated SHFE, INE, COMEX, NYMEX, LME "
            "and the USD/CNH rate), watch the gold spread, fire one hedged trade and read its receipt. "
            "Everything runs offline and the market is the same for the same seed."
        ),
        new_code_cell(
            'import cmc_lab as cmc\n\neng = cmc.connect("sim", seed=7, journal="quickstart.sqlite")\neng'
        ),
        new_markdown_cell("The instruments, with their lot, quote unit, tick, margin and trading sessions:"),
        new_code_cell("eng.instruments"),
        new_markdown_cell("Quotes move: the domestic and overseas legs of each pair are correlated."),
        new_code_cell("eng.sleep(1.0)\neng.quotes()"),
        new_markdown_cell(
            "## The gold spread\n\nSHFE gold is quoted in CNY per gram, COMEX gold in USD per troy ounce. "
            "The spread converts through USD/CNH and 31.1034768 g/oz by itself, and trades in whole lots "
            "of equal weight: 3 au (3 kg) against 1 GC (3.11 kg)."
        ),
        new_code_cell(
            'au_gc = eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})\nprint(au_gc)\nau_gc.quote()'
        ),
        new_markdown_cell(
            "## The workbench\n\nThe kill switch stays on top and works even while a cell is running. "
            "Below it: the spread's executable bid/ask band, its mid and z-score, the hedge-ticket panel "
            "(pick side, quantity, trigger and policy, then confirm) and the alerts feed."
        ),
        new_code_cell("wb = cmc.workbench(eng)\nwb"),
        new_markdown_cell(
            "## One hedged trade from code\n\nBuy the spread: both legs leave together; if one is rejected "
            "the ticket chases it (or unwinds the other), so the desk is never left naked."
        ),
        new_code_cell('t = eng.hedge("au_gc", side="buy", qty=3, policy="chase")\nt.wait(timeout=10)\nt'),
        new_code_cell("t.report()"),
        new_markdown_cell("The ticket's receipt, from the journal: its decision, both legs, every answer."),
        new_code_cell(
            "from cmc_lab.ui.receipt import receipt_timeline\n\nreceipt_timeline(eng, t.ticket_id)"
        ),
        new_code_cell(
            "receipt = eng.journal.timeline(t.ticket_id)\n"
            'receipt[["seq", "kind", "order_id", "venue", "hop_ns"]]'
        ),
        new_markdown_cell("A bad order gets a clear error and leaves nothing in the journal:"),
        new_code_cell(
            "try:\n"
            '    eng.submit("SHFE.au", "buy", 1, price=620.01)\n'
            "except cmc.InvalidOrder as exc:\n"
            "    print(exc)"
        ),
        new_markdown_cell(
            "The journal's hash chain verifies. The engine keeps running for the workbench; "
            "`eng.close()` stops it."
        ),
        new_code_cell("eng.journal.verify()"),
    ]


def cells_02() -> list:
    return [
        new_markdown_cell(
            "# Spreads and triggers\n\n"
            "Four inner/outer pairs on the embedded exchange: gold, silver, copper (with import parity) and "
            "crude. Units and currency convert from the instrument specs; lots trade in whole ratios of "
            "equal physical quantity. The virtual clock runs the market as fast as the CPU allows, so ten "
            "market minutes take a few seconds and every run sees the same prices."
        ),
        new_code_cell(
            "import pandas as pd\n"
            "from bokeh.io import output_notebook, show\n"
            "from bokeh.plotting import figure\n"
            "from bokeh.resources import INLINE\n\n"
            "import cmc_lab as cmc\n"
            "from cmc_lab.pricing import CostTerms, lot_ratios\n\n"
            "output_notebook(resources=INLINE, hide_banner=True)\n"
            'eng = cmc.connect("sim", seed=7, clock="virtual")'
        ),
        new_code_cell(
            "spreads = {\n"
            '    "au_gc": eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1}),\n'
            '    "ag_si": eng.spread("ag_si", legs={"SHFE.ag": 1, "COMEX.SI": -1}),\n'
            '    "cu_lme": eng.spread("cu_lme", legs={"SHFE.cu": 1, "LME.CA": -1}),\n'
            '    "sc_cl": eng.spread("sc_cl", legs={"INE.sc": 1, "NYMEX.CL": -1}),\n'
            "}\n"
            "pd.DataFrame(\n"
            '    {name: {"unit": sp.unit, "lots": ":".join(str(sp.lots[i]) for i in sp.leg_ids),\n'
            '            "bid": sp.quote().bid, "ask": sp.quote().ask, "size": sp.quote().ask_size}\n'
            "     for name, sp in spreads.items()}\n"
            ").T"
        ),
        new_markdown_cell(
            "Lots: 3 SHFE au (3 kg) hedge 1 COMEX GC (3.11 kg) within 4 %; 28:9 is almost exact. The "
            "residual is the exposure a whole-lot hedge leaves."
        ),
        new_code_cell(
            'au, gc = eng.instrument("SHFE.au"), eng.instrument("COMEX.GC")\n'
            "lot_ratios(au, gc, tolerance=0.04)[:4]"
        ),
        new_markdown_cell(
            "## Copper import parity\n\n`cu - (LME + premium) * USDCNY * (1 + VAT) - fixed`: the terms are "
            "named and editable. The default is a USD 80/t bonded premium and 13 % VAT."
        ),
        new_code_cell(
            'print(spreads["cu_lme"].quote().mid)\n'
            'wider = eng.spread("cu_lme_95", legs={"SHFE.cu": 1, "LME.CA": -1},\n'
            '                   costs={"LME.CA": CostTerms(premium=95.0, vat=0.13)})\n'
            "print(wider.quote().mid)"
        ),
        new_markdown_cell("## Ten market minutes of the four spreads"),
        new_code_cell(
            "rows = []\n"
            "for name in spreads:\n"
            "    eng.desk.on_spread(name, lambda s: rows.append((s.name, s.ts_ns, s.bid, s.ask, s.mid, s.z)))\n"
            "eng.sleep(600)\n"
            'history = pd.DataFrame(rows, columns=["spread", "ts", "bid", "ask", "mid", "z"])\n'
            'history["time"] = pd.to_datetime(history["ts"], unit="ns")\n'
            'history.groupby("spread")[["bid", "ask", "mid"]].describe().T.round(3)'
        ),
        new_code_cell(
            'gold = history[history.spread == "au_gc"]\n'
            'fig = figure(height=280, width=800, x_axis_type="datetime", title="au_gc (CNY/g)")\n'
            'fig.varea(gold.time, gold.bid, gold.ask, fill_alpha=0.3, legend_label="bid/ask")\n'
            'fig.line(gold.time, gold.mid, legend_label="mid")\n'
            "show(fig)"
        ),
        new_markdown_cell(
            "## Triggers\n\nArm a ticket that buys the gold spread when its executable ask is at or below "
            "its 20th percentile of the last ten minutes, held for 0.5 s so one flickering tick does not "
            "fire it; and one that sells on a rolling z-score above 1.5."
        ),
        new_code_cell(
            "level = round(gold.ask.quantile(0.2), 3)\n"
            't_buy = eng.hedge("au_gc", "buy", 3, when=f"ask <= {level}", dwell_ms=500)\n'
            't_sell = eng.hedge("au_gc", "sell", 3, when="z > 1.5", dwell_ms=500)\n'
            "eng.sleep(900)\n"
            "eng.tickets()"
        ),
        new_code_cell("eng.alerts() if len(eng.alerts()) else 'no alerts'"),
        new_code_cell("eng.journal.verify()"),
        new_code_cell("eng.close()"),
    ]


def cells_03() -> list:
    return [
        new_markdown_cell(
            "# Hedged execution under faults\n\n"
            "A desk's worst case is one leg filled and the other rejected, late or partial. Here we script "
            "those faults on the embedded exchange and watch each ticket's policy restore a hedged (or flat) "
            "position: **chase** re-prices the missing leg within a bound, **unwind** rolls back the filled "
            "one with a bounded loss, **hold** stops and alerts a human until a time limit unwinds."
        ),
        new_code_cell(
            "import cmc_lab as cmc\n\n"
            'eng = cmc.connect("sim", seed=11, clock="virtual")\n'
            'eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})\n'
            'comex, shfe = eng.venues["COMEX"], eng.venues["SHFE"]'
        ),
        new_markdown_cell("**The overseas leg is rejected once**: the ticket chases it and completes."),
        new_code_cell(
            'comex.inject("reject", times=1, reason="credit check failed")\n'
            't1 = eng.hedge("au_gc", "buy", 3, policy="chase")\n'
            "t1.wait(10)\n"
            "t1"
        ),
        new_code_cell(
            'eng.journal.timeline(t1.ticket_id)[["kind", "order_id", "venue", "hop_ns", "reason"]]'
        ),
        new_markdown_cell(
            "**A reject storm**: every re-order fails, so after three attempts the ticket unwinds."
        ),
        new_code_cell(
            'storm = comex.inject("reject", times=None, probability=1.0, reason="venue overloaded")\n'
            't2 = eng.hedge("au_gc", "buy", 3, policy="chase", max_attempts=3)\n'
            "t2.wait(20)\n"
            "storm.remove()\n"
            "t2"
        ),
        new_markdown_cell("**A partial fill on the domestic leg** with the unwind policy."),
        new_code_cell(
            'shfe.inject("partial", times=1, ratio=0.34)\n'
            't3 = eng.hedge("au_gc", "sell", 6, policy="unwind")\n'
            "t3.wait(20)\n"
            "t3"
        ),
        new_markdown_cell(
            "**Hold**: the desk wants a human to decide, but never for longer than `max_legged_ms`: "
            "an alert now, an unwind at the time limit."
        ),
        new_code_cell(
            'comex.inject("reject", times=1)\n'
            't4 = eng.hedge("au_gc", "buy", 3, policy="hold", max_legged_ms=2000)\n'
            "t4.wait(20)\n"
            "eng.alerts()"
        ),
        new_markdown_cell("Every ticket, its outcome and its figures:"),
        new_code_cell("eng.tickets()"),
        new_code_cell(
            "import pandas as pd\n\n"
            "pd.DataFrame([\n"
            '    {"ticket": t.ticket_id, "state": t.state.value, "attempts": t.attempts,\n'
            '     "between legs ms": (t.report()["time_between_legs_ns"] or 0) / 1e6,\n'
            '     **{f"{leg} slip ticks": v["slippage_ticks"] for leg, v in t.report()["legs"].items()}}\n'
            "    for t in (t1, t2, t3, t4)\n"
            "])"
        ),
        new_code_cell("eng.journal.verify()"),
        new_code_cell("eng.close()"),
    ]


def cells_04() -> list:
    return [
        new_markdown_cell(
            "# Capital and thresholds: the overseas margin squeeze\n\n"
            "A hedged gold book: long SHFE au in the CNY account, short COMEX GC in the USD account. When "
            "gold spikes and COMEX raises its margin, the short GC leg drains the USD account while the "
            "gain sits on the CNY side of the border. The desk's rule: warn at 70 % margin utilisation, "
            "transfer from the account with the most headroom at 80 %, liquidation line at 95 %."
        ),
        new_code_cell(
            "from decimal import Decimal\n\n"
            "import cmc_lab as cmc\n\n"
            'eng = cmc.connect("sim", seed=7, clock="virtual", accounts={"US-FUT": 400_000})\n'
            "eng.capital()"
        ),
        new_markdown_cell("Build the hedged position: 30 au lots (30 kg) against 10 GC lots (31.1 kg)."),
        new_code_cell(
            'gc, au = eng.quote("COMEX.GC"), eng.quote("SHFE.au")\n'
            'short = eng.submit("COMEX.GC", "sell", 10, price=Decimal(str(gc.bid)) - 2)\n'
            'long = eng.submit("SHFE.au", "buy", 30, price=eng.instrument("SHFE.au").round_to_tick(au.ask + 0.5))\n'
            "short.wait(5), long.wait(5)\n"
            "eng.capital()"
        ),
        new_code_cell(
            "eng.thresholds.add(\n"
            '    "margin_utilisation", warn=0.7, act=0.8, liquidation=0.95,\n'
            '    action="transfer", scope="US-FUT", min_buffer=10_000_000,\n'
            ")\n"
            "eng.thresholds"
        ),
        new_markdown_cell("**COMEX raises the GC margin** from USD 16,500 to 30,000 a lot: a warning."),
        new_code_cell('eng.set_margin_rate("COMEX.GC", 30_000)\neng.sleep(0.5)\neng.alerts()'),
        new_markdown_cell(
            "**Gold spikes 2 %**: the short GC leg loses, utilisation passes 80 % and the engine "
            "requests a transfer from the CNY account at once; the wire takes two market seconds."
        ),
        new_code_cell('eng.venues["COMEX"].shock("GC", 0.02)\neng.sleep(1.0)\neng.capital()'),
        new_code_cell("eng.sleep(2.5)\neng.capital()"),
        new_markdown_cell("Each crossing, the action it caused and the time from crossing to action:"),
        new_code_cell("eng.thresholds.crossings()"),
        new_code_cell("eng.thresholds.actions()"),
        new_markdown_cell("The journal tells the story in order, every row hash-chained:"),
        new_code_cell(
            'kinds = ["MarginRateChanged", "ThresholdCrossed", "ThresholdCleared", "Alert",\n'
            '         "ThresholdAction", "TransferRequested", "TransferInTransit", "TransferCredited"]\n'
            '[(r["seq"], r["kind"], r["payload"].get("level") or r["payload"].get("action", ""))\n'
            " for r in eng.journal.rows(kinds=kinds)]"
        ),
        new_markdown_cell(
            "## Pre-trade checks\n\nEvery order passes the checks a regulator expects before it leaves; a "
            "refusal is a readable denial, never an exception. Here: an order far outside the price band."
        ),
        new_code_cell('o = eng.submit("COMEX.GC", "buy", 1, price=2000.0)\no.state, o.reason'),
        new_code_cell("[name for name, _ in eng.checks.checks]"),
        new_code_cell("eng.journal.verify()"),
        new_code_cell("eng.close()"),
    ]


NOTEBOOKS = {
    "01_quickstart.ipynb": cells_01,
    "02_spreads_and_triggers.ipynb": cells_02,
    "03_hedged_execution_under_faults.ipynb": cells_03,
    "04_capital_and_thresholds.ipynb": cells_04,
}


def main(names: list[str]) -> None:
    for name, make in NOTEBOOKS.items():
        if names and name not in names:
            continue
        nb = new_notebook(cells=make())
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, HERE / name)
        print("wrote", HERE / name)


if __name__ == "__main__":
    main(sys.argv[1:])
