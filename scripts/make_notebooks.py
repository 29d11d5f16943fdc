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
            "import cmc_lab as cmc\n\n"
            'eng = cmc.connect("sim", seed=7, journal="quickstart.sqlite")\n'
            "eng"
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
            'au_gc = eng.spread("au_gc", legs={"SHFE.au": 1, "COMEX.GC": -1})\n'
            "print(au_gc)\n"
            "au_gc.quote()"
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
        new_code_cell(
            't = eng.hedge("au_gc", side="buy", qty=3, policy="chase")\n'
            "t.wait(timeout=10)\n"
            "t"
        ),
        new_code_cell("t.report()"),
        new_markdown_cell("The ticket's receipt, from the journal: its decision, both legs and every answer."),
        new_code_cell(
            "from cmc_lab.ui.receipt import receipt_timeline\n\n"
            "receipt_timeline(eng, t.ticket_id)"
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


NOTEBOOKS = {"01_quickstart.ipynb": cells_01}


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
