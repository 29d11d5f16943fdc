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
        new_code_cell("from cmc_lab.ui.receipt import receipt_timeline\n\nreceipt_timeline(eng.receipt(t))"),
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
            "A resting order can be amended: `replace` returns the venue's answer, `OrderReplaced` (the "
            "order now works the new size at the new price) or `OrderReplaceRejected` with the reason."
        ),
        new_code_cell(
            'o = eng.submit("COMEX.GC", "buy", 1, price=2600.0)   # below the bid: it rests\n'
            "o.wait(timeout=0.5)\n"
            "print(o.replace(price=2600.5, qty=2))\n"
            "o.cancel()\n"
            "o.wait(timeout=2)"
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


def cells_05() -> list:
    return [
        new_markdown_cell(
            "# Receipts and audit\n\n"
            "Every order and hedge ticket leaves a receipt in the journal: the decision with the quotes it "
            "saw, the pre-trade checks, the intent committed before the message left, the send, the venue's "
            "ack, each fill, each re-order or unwind and the final state, with the latency of every hop and "
            "the slippage of every fill. The same journal exports as a self-contained audit pack whose "
            "manifest catches any change, and verifies as one hash chain even after old rows are archived."
        ),
        new_code_cell(
            "import sqlite3\n"
            "import tempfile\n"
            "import zipfile\n"
            "from pathlib import Path\n\n"
            "import pandas as pd\n"
            "from bokeh.io import output_notebook\n"
            "from bokeh.resources import INLINE\n\n"
            "import cmc_lab as cmc\n"
            "from cmc_lab.journal import Journal\n"
            "from cmc_lab.journal.archive import rotate, verify_chain\n"
            "from cmc_lab.journal.pack import verify_pack\n"
            "from cmc_lab.journal.ratios import ratios\n"
            "from cmc_lab.ui.receipt import receipt_timeline\n\n"
            "output_notebook(resources=INLINE, hide_banner=True)\n"
            'work = Path(tempfile.mkdtemp(prefix="cmc-receipts-"))\n'
            'eng = cmc.connect("sim", seed=7, clock="virtual", journal=work / "day.sqlite")\n'
            "eng"
        ),
        new_markdown_cell(
            "## The receipt of one order\n\nA plain limit order: its decision saw the top of book, passed "
            "every pre-trade check, was acknowledged and filled. Slippage is measured against the touch the "
            "decision saw (positive = worse), in ticks and in money, exactly."
        ),
        new_code_cell(
            'order = eng.submit("COMEX.GC", "buy", 2, price=2700.0)\n'
            "order.wait(timeout=5)\n"
            "receipt = eng.receipt(order)\n"
            "receipt"
        ),
        new_code_cell(
            'receipt.frame[["seq", "time", "step", "state", "hop_ns", "venue_lag_ns", "last_px", '
            '"slippage_ticks", "slippage"]]'
        ),
        new_code_cell("receipt.latency"),
        new_markdown_cell("An order the checks refuse leaves a receipt too, with the check that refused it:"),
        new_code_cell(
            'denied = eng.receipt(eng.submit("COMEX.GC", "buy", 1, price=2000.0))\n'
            "denied.outcome, denied.reason"
        ),
        new_markdown_cell(
            "## The receipt of a hedge ticket\n\nThe overseas leg is rejected once: the ticket chases it. Its "
            "receipt holds the decision and both quotes it saw, both legs, the reject, the re-order and the "
            "final state; the per-leg figures are those of `ticket.report()`, rebuilt from the journal alone."
        ),
        new_code_cell(
            'eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})\n'
            'eng.venues["COMEX"].inject("reject", times=1)\n'
            'ticket = eng.hedge("au_gc", "buy", 3, policy="chase")\n'
            "ticket.wait(timeout=10)\n"
            "ticket_receipt = eng.receipt(ticket)\n"
            'ticket_receipt.decision["quotes"]'
        ),
        new_code_cell("ticket_receipt.legs"),
        new_code_cell("receipt_timeline(ticket_receipt)"),
        new_markdown_cell("The kill switch is journaled with who used it and why:"),
        new_code_cell('eng.kill("end-of-day drill", who="desk")\neng.rearm(who="desk")'),
        new_markdown_cell(
            "## The audit pack\n\n`eng.audit(path, since=..., until=...)` (or `cmc-lab audit PATH --journal J`) "
            "writes one zip: every order event of the window as CSV and JSON Lines with the order-record "
            "fields, one row per order and per ticket, alerts, kill-switch uses, order-to-trade and cancel "
            "ratios per contract per day, every journal row with its hashes, the chain head and a "
            "verification report, a readable HTML summary and a manifest with the SHA-256 of every file."
        ),
        new_code_cell(
            'pack = eng.audit(work / "audit-2026-11-24.zip", since="2026-11-24", until="2026-11-25")\n'
            "with zipfile.ZipFile(pack) as zf:\n"
            '    files = pd.DataFrame([(i.filename, i.file_size) for i in zf.infolist()], columns=["file", "bytes"])\n'
            '    events = pd.read_csv(zf.open("order_events.csv"), dtype=str, keep_default_na=False)\n'
            "files"
        ),
        new_code_cell(
            'events[["seq", "event", "ts_event_utc", "client_order_id", "venue_order_id", "instrument", "side",\n'
            '        "price", "quantity", "time_in_force", "account", "last_px", "last_qty", "state"]].head(12)'
        ),
        new_code_cell("ratios(eng.journal)"),
        new_code_cell("verify_pack(pack)"),
        new_markdown_cell(
            "Anyone who edits a file of the pack (here: one fill price in the CSV) makes it fail its own "
            "manifest, and the report names the file. From a shell: `cmc-lab audit verify PACK` exits 1."
        ),
        new_code_cell(
            'edited = work / "edited.zip"\n'
            'with zipfile.ZipFile(pack) as src, zipfile.ZipFile(edited, "w") as dst:\n'
            "    for name in src.namelist():\n"
            "        data = src.read(name)\n"
            '        if name == "order_events.csv":\n'
            '            data = data.replace(b",2650.10,", b",2650.00,", 1)\n'
            "        dst.writestr(name, data)\n"
            "verify_pack(edited)"
        ),
        new_markdown_cell(
            "## Tampering with the journal\n\nThe journal's rows are hash-chained: editing, deleting or "
            "reordering rows in a copy of the file is found, and the first bad row is named."
        ),
        new_code_cell(
            'copy = work / "copy.sqlite"\n'
            "with sqlite3.connect(eng.journal.path) as src, sqlite3.connect(copy) as dst:\n"
            "    src.backup(dst)\n"
            "with sqlite3.connect(copy) as conn:\n"
            '    conn.execute("DROP TRIGGER events_no_update")\n'
            "    conn.execute(\"UPDATE events SET payload = replace(payload, '2700.0', '2600.0') WHERE seq = 8\")\n"
            "Journal(copy, readonly=True).verify()"
        ),
        new_markdown_cell(
            "## Retention\n\nOld rows rotate into read-only archive files; the live journal's first row still "
            "links to the archive's last hash, so archive and journal verify as one chain."
        ),
        new_code_cell("rotation = rotate(eng.journal, upto_seq=eng.journal.head[0] - 5)\nrotation"),
        new_code_cell("verify_chain([rotation.archive, eng.journal.path])"),
        new_code_cell("eng.journal.verify()"),
        new_code_cell("eng.close()"),
    ]


def cells_06() -> list:
    return [
        new_markdown_cell(
            "# Research: quote history, replay and a parameter sweep\n\n"
            "Record a session's quotes into an xarray Dataset (`time x instrument`: bid, ask, sizes), or "
            "synthesize them from the embedded exchange's own market model. Study the gold spread with the "
            "research helpers, which price it through the same code as the live spread. Then replay the "
            "quotes through the **same engine**, triggers and hedge tickets as a live session, and sweep "
            "trigger level x policy x latency in parallel with dask. Everything runs offline and is "
            "deterministic by seed."
        ),
        new_code_cell(
            "import shutil\n"
            "import tempfile\n"
            "from pathlib import Path\n\n"
            "from bokeh.io import output_notebook, show\n"
            "from bokeh.layouts import column\n"
            "from bokeh.plotting import figure\n"
            "from bokeh.resources import INLINE\n\n"
            "import cmc_lab as cmc\n"
            "from cmc_lab.data import align, distribution, half_life, rolling_z, spread_series, synthetic_quotes\n"
            "from cmc_lab.data.recorder import Recorder\n"
            "from cmc_lab.research import run_replay, sweep\n"
            "from cmc_lab.core.specs import load_specs\n\n"
            "output_notebook(resources=INLINE, hide_banner=True)\n"
            'workdir = Path(tempfile.mkdtemp(prefix="cmc-06-"))'
        ),
        new_markdown_cell(
            "## Record a session\n\nThe recorder hangs on `eng.on_quote`: on the engine thread a quote is a few "
            "array writes into a preallocated chunk; a background thread appends full chunks to a Zarr store, "
            "so the engine never waits for a disk. Five market minutes on the virtual clock:"
        ),
        new_code_cell(
            'eng = cmc.connect("sim", seed=7, clock="virtual")\n'
            'rec = Recorder(eng, workdir / "session.zarr", chunk=4096)\n'
            "eng.sleep(300)\n"
            "recorded = rec.close()\n"
            "eng.close()\n"
            "recorded"
        ),
        new_markdown_cell(
            "A row is one moment: the instruments that quoted then, NaN for the others. So a quote "
            '"at t" is always an **as-of** lookup, never a look into the future. Synthetic data comes from '
            "the embedded exchange's market model: here 20 minutes at 10 quotes a second per instrument (the "
            "reference set is 30 trading days, made lazily one day per dask chunk)."
        ),
        new_code_cell(
            'quotes = synthetic_quotes(days=1, rate_hz=10, seed=7, start="2026-11-24 14:00", day_length="20min")\n'
            'aligned = align(quotes, ["SHFE.au", "COMEX.GC", "FX.USDCNH"], on="1s")\n'
            "aligned.bid.to_pandas().head()"
        ),
        new_markdown_cell(
            "## The gold spread over the tape\n\nExecutable bid/ask in CNY/g through USD/CNH, sizes in 3:1 "
            "spread units, a rolling z-score over the last 300 values (the live trigger's `z`) and the "
            "AR(1) mean-reversion half-life."
        ),
        new_code_cell(
            'au_gc = spread_series(quotes, {"SHFE.au": 1, "COMEX.GC": -1}, max_age="3s")\n'
            'au_gc["z"] = rolling_z(au_gc.mid, window=300)\n'
            'print(au_gc.attrs, "half-life:", half_life(au_gc.mid, freq="1s"))\n'
            "au_gc.to_dataframe().describe().T.round(4)"
        ),
        new_code_cell(
            "frame = au_gc.to_dataframe().iloc[::10]\n"
            'top = figure(height=260, width=820, x_axis_type="datetime", title=f"au_gc ({au_gc.attrs[\'unit\']})")\n'
            'top.varea(frame.index, frame.bid, frame.ask, fill_alpha=0.3, legend_label="bid/ask")\n'
            'top.line(frame.index, frame.mid, legend_label="mid")\n'
            'bottom = figure(height=160, width=820, x_axis_type="datetime", x_range=top.x_range, title="z")\n'
            "bottom.line(frame.index, frame.z)\n"
            "show(column(top, bottom))"
        ),
        new_markdown_cell(
            "The spread by SHFE trading session and Shanghai hour, over a whole synthetic day (one quote every "
            "two seconds); outside SHFE's sessions the au quote goes stale and the spread is blank."
        ),
        new_code_cell(
            'day = synthetic_quotes(rate_hz=0.5, seed=7, start="2026-11-24 00:00", day_length="24h")\n'
            'gold_day = spread_series(day, {"SHFE.au": 1, "COMEX.GC": -1}, max_age="3s")\n'
            'distribution(gold_day.mid, load_specs().instrument("SHFE.au")).round(3)'
        ),
        new_markdown_cell(
            "## Replay the recording through the engine\n\n`replay:PATH` venues play the store on the virtual "
            "clock and match orders against the recorded top of book (price, recorded size, latency). The "
            "ticket below is an ordinary hedge ticket: trigger, checks, journal, chase policy."
        ),
        new_code_cell(
            'replay = cmc.connect(f"replay:{workdir / \'session.zarr\'}", clock="virtual")\n'
            'replay.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})\n'
            'ticket = replay.hedge("au_gc", "buy", 3, when="z <= -1.5", policy="chase")\n'
            "ticket.wait(300)\n"
            "ticket"
        ),
        new_markdown_cell(
            "The price the ticket decided on is the number the research helpers compute from the same tape: "
            "one code path. The live session traded contract months, so the tape holds them; the replay "
            "reads `SHFE.au` as the nearest recorded month."
        ),
        new_code_cell(
            "legs = ticket.spread.leg_ids  # the months the session recorded: SHFE.au2702, COMEX.GCG27\n"
            "at = spread_series(recorded, {legs[0]: 1, legs[1]: -1}, on=[ticket.decision.ts_ns])\n"
            "print(ticket.decision.bid, ticket.decision.ask)\n"
            "print(float(at.bid[0]), float(at.ask[0]))\n"
            'replay.journal.timeline(ticket.ticket_id)[["kind", "order_id", "venue", "hop_ns"]]'
        ),
        new_code_cell("replay.close()"),
        new_markdown_cell(
            "## Research in one call\n\n`run_replay` does the above for a repeating trigger and returns one row "
            "per ticket: decision and executed spread prices, slippage in spread units and in CNY, per-leg "
            "slippage in ticks, time to hedged."
        ),
        new_code_cell(
            'tickets = run_replay(quotes, when="z <= -{level}", level=2.0, policy="chase", repeat=20)\n'
            'print(tickets.attrs["replay"])\n'
            'tickets[["n", "fired_at", "state", "decision_px", "executed_px", "slippage", "slippage_cny",\n'
            '         "time_to_hedged_ms"]].head(10)'
        ),
        new_markdown_cell(
            "## A parameter sweep with dask\n\nTrigger level x policy x one-way latency, each on two halves of "
            "the tape: 16 independent virtual-clock engines on a local cluster of two worker processes. Pass "
            '`client=dask.distributed.Client("tcp://scheduler:8786")` (or its address) to use a real cluster.'
        ),
        new_code_cell(
            'grid = {"level": [1.5, 2.5], "policy": ["chase", "unwind"], "latency_ms": [0, 150]}\n'
            'result = sweep(grid, quotes, workers=2, split=2, when="z <= -{level}", repeat=20)\n'
            "result"
        ),
        new_code_cell('result.to_xarray()["slippage_mean"].sel(policy="chase").to_pandas()'),
        new_code_cell("shutil.rmtree(workdir)"),
    ]


def cells_07() -> list:
    return [
        new_markdown_cell("""# Contract months and the roll

A desk does not hold "gold": it holds **SHFE au2702** against **COMEX GCG27**, and before February's last trading day it has to move both into later months. This notebook trades contract months on the embedded exchange: which months are quoted, what `SHFE.au` stands for, a calendar spread, a hedged position, the reminder that it is time to roll, and the roll itself as hedged tickets, with the fees the book charged.

The embedded exchange starts on Tuesday 2026-11-24. Its months follow each exchange's rules (`cmc_lab/core/contracts.toml`, with sources): SHFE gold's main month is the next even month more than 30 days from its last trading day (the 15th), COMEX gold's the next even month before its first notice day."""),
        new_code_cell("""import tempfile
from pathlib import Path

import pandas as pd

import cmc_lab as cmc

# The desk's own rule for crude: remind 20 trading days ahead (contracts.toml says 5 by default).
desk = Path(tempfile.mkdtemp()) / "desk.toml"
desk.write_text('[contracts."NYMEX.CL"]\\nremind_days = 20\\n')

eng = cmc.connect("sim", seed=7, clock="virtual", instruments=desk)
months = eng.instruments
months[months["product"].isin(["SHFE.au", "COMEX.GC", "NYMEX.CL"])][["product", "name", "last trading day", "tick", "margin"]]"""),
        new_markdown_cell(
            """Each product is quoted in two months: its main month and the next main month, the one a position rolls into (`cmc.connect(..., months=N)` for more). The product id is a readable alias of the main month:"""
        ),
        new_code_cell("""pd.DataFrame(
    {p: {"main month": eng.instrument(p).id, "last trading day": eng.instrument(p).last_trading_day}
     for p in ("SHFE.au", "COMEX.GC", "NYMEX.CL")}
).T"""),
        new_markdown_cell(
            """**A calendar spread** is a spread of two months of one product: no unit or currency conversion. The later month trades above the main month by about the cost of carry."""
        ),
        new_code_cell("""au, au_next = eng.instrument("SHFE.au").id, "SHFE.au2704"
gc, gc_next = eng.instrument("COMEX.GC").id, "COMEX.GCJ27"
calendar = eng.spread("au_cal", legs={au: 1, au_next: -1})
cross = eng.spread("au_gc", legs={au: 1, gc: -1})
eng.sleep(5)
pd.DataFrame([{"spread": s.name, "unit": q.unit, "bid": q.bid, "ask": q.ask, "legs": " / ".join(l.instrument_id for l in q.legs)}
              for s, q in ((calendar, calendar.quote()), (cross, cross.quote()))])"""),
        new_markdown_cell(
            """**The hedged position**: 3 au lots (3 kg) against 1 GC lot (3.11 kg), both legs sent together. Crude is held too, 2 lots of the front month."""
        ),
        new_code_cell("""ticket = eng.hedge(cross, "buy", 3)
print(ticket.wait(10))
cl = eng.instrument("NYMEX.CL")
crude = eng.submit(cl.id, "buy", 2, price=cl.round_to_tick(eng.quote(cl.id).ask + 0.05))
print(crude.wait(10))
eng.positions()[["account", "instrument", "position", "avg_px"]]"""),
        new_markdown_cell(
            """**The reminder.** A position in a month close to its last trading day raises a roll alert once a trading day (from `remind_days` trading days before it; critical on the day). Crude's January contract stops trading on 2026-12-21, 18 CME trading days away, inside this desk's 20:"""
        ),
        new_code_cell("""eng.sleep(61)
alerts = eng.alerts()
for alert in alerts[alerts["source"] == "roll"].itertuples():
    print(f"{alert.time:%Y-%m-%d %H:%M} {alert.level}: {alert.message}")"""),
        new_markdown_cell(
            """**The roll.** `eng.roll(month)` trades the calendar spread *near − far* as one hedged ticket: sold to roll a long, bought to roll a short, all that the account holds unless `qty=` says otherwise. Both legs go out together and the ticket chases (or unwinds) as any other, so the position is never doubled or left out between the two orders. The cross-market hedge rolls leg by leg: each product's exposure stays the same while it moves."""
        ),
        new_code_cell("""rolls = [eng.roll(au), eng.roll(gc), eng.roll("NYMEX.CL")]
for t in rolls:
    t.wait(10)
pd.DataFrame([{"ticket": t.ticket_id, "spread": t.spread.name, "side": t.side.value, "state": t.state.value} for t in rolls])"""),
        new_markdown_cell(
            """One month on; each position's last trading day says when the next roll is due:"""
        ),
        new_code_cell(
            """eng.positions()[["account", "instrument", "position", "avg_px", "last_trading_day"]]"""
        ),
        new_markdown_cell(
            """**What it cost.** Every fill is booked with its fee from the dated schedule (`fees.toml`): on SHFE gold, closing a lot opened the same trading day is free and opening costs 10 CNY a lot; COMEX and NYMEX charge per contract (exchange, NFA and the broker's part). The ticket report gives the roll's fees in CNY and what the book realised on its fills: closing the February lots bought at the start locked in their move (the ticket's own round trip, `realised_pnl_cny`, is zero: it bought one month and sold another):"""
        ),
        new_code_cell("""report = eng.ticket(rolls[0].ticket_id).report()
{k: report[k] for k in ("outcome", "time_between_legs_ns", "book_realised_pnl_cny", "fees_cny")}"""),
        new_code_cell("""fills = list(eng.journal.rows(kinds=["FillBooked"]))
pd.DataFrame([{"instrument": r["payload"]["instrument"], "side": r["payload"]["side"], "qty": r["payload"]["qty"],
               "offset": r["payload"].get("offset"), "fee": r["payload"]["fee"], "fee_currency": r["payload"]["fee_currency"],
               "detail": r["payload"]["fee_detail"]} for r in fills])"""),
        new_markdown_cell(
            """The book ends where it started, one month on. Flat before the close, so nothing is carried into the next session:"""
        ),
        new_code_cell("""for month in ("SHFE.au2704", "COMEX.GCJ27", "NYMEX.CLG27"):
    for order in eng.flatten(month):
        order.wait(10)
eng.positions()[["account", "instrument", "position", "realized"]]"""),
        new_code_cell("""eng.close()"""),
    ]


NOTEBOOKS = {
    "01_quickstart.ipynb": cells_01,
    "02_spreads_and_triggers.ipynb": cells_02,
    "03_hedged_execution_under_faults.ipynb": cells_03,
    "04_capital_and_thresholds.ipynb": cells_04,
    "05_receipts_and_audit.ipynb": cells_05,
    "06_research_replay_and_sweep.ipynb": cells_06,
    "07_contract_months_and_rolls.ipynb": cells_07,
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
