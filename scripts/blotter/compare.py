"""The blotter-table comparison, measured in one run: each candidate table in real JupyterLab and
headless Chromium, under the same quote storm (1,000 quotes/s, 50 working orders).

Run with the Python of the environment ``scripts/blotter/setup.sh`` makes (ipydatagrid,
perspective-python and pyarrow are not dependencies of cmc_lab)::

    bash scripts/blotter/setup.sh                      # .blotter-venv
    .blotter-venv/bin/python scripts/blotter/compare.py [--rounds 3] [--window 10] [--json out.json]

For every round and every candidate (``candidates.CANDIDATES``, in turn): a fresh notebook and kernel
build the workload (``cmc_lab.bench.ui.blotter_workload``) and show the candidate's four tables; the
last cell starts the storm. The kernel counts its comm traffic over the window
(``candidates.CommMeter``), the page its frame intervals (requestAnimationFrame), long tasks, and
Chromium's own main-thread time (DevTools ``Performance.getMetrics``: task, script, layout and style
recalculation durations) over a window of the same length. Prints one table with the median of each
figure over the rounds, and saves a screenshot of each table to test-artifacts/.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))
sys.path.insert(0, str(HERE))

from candidates import CANDIDATES  # noqa: E402
from lab_page import CODE_PROMPTS, kernel_idle  # noqa: E402
from lab_server import CHROMIUM, CHROMIUM_ARGS, Lab, wait_for  # noqa: E402
from lab_server import lab_server as start_lab  # noqa: E402

SETTLE_SECONDS = 1.0
# Frame intervals and long tasks over ``ms`` of requestAnimationFrame.
FRAMES = """(ms) => new Promise(done => {
  const times = []; const long = [];
  let observer = null;
  try {
    observer = new PerformanceObserver(list => { for (const e of list.getEntries()) long.push(e.duration); });
    observer.observe({type: 'longtask'});
  } catch (e) {}
  let last = performance.now(); const end = last + ms;
  const step = now => {
    times.push(now - last); last = now;
    if (now < end) requestAnimationFrame(step);
    else { if (observer) observer.disconnect(); done({times, long}); }
  };
  requestAnimationFrame(step);
})"""
# perspective-python 5.6.1 under anywidget 0.11: anywidget imports a widget's ES module once per model,
# and Perspective's bundle defines the custom element "regular-layout" without checking that it exists,
# so every PerspectiveWidget after the first on a page fails ("the name "regular-layout" has already been
# used with this registry"; "Could not create a view for model id ..."). The blotter needs four tables:
# for Perspective only, the page skips a second definition of a name already defined.
DEFINE_ONCE = """(() => {
  const define = customElements.define.bind(customElements);
  customElements.define = (name, cls, options) => { if (!customElements.get(name)) define(name, cls, options); };
})();"""
METRICS = ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration", "JSHeapUsedSize")
CELLS = [
    "import sys\nsys.path.insert(0, {here!r})\nimport candidates as bc\n"
    "eng = bc.workload({orders})\nrun = bc.Run(eng, {name!r})\nrun.table.widget",
    "measuring = run.start({out!r}, warmup={warmup}, window={window}, quotes_per_second={rate})",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1, help="rounds over every candidate (default 1)")
    parser.add_argument("--window", type=float, default=10.0, help="seconds measured per candidate")
    parser.add_argument("--rate", type=int, default=1000, help="quotes per second pushed")
    parser.add_argument("--orders", type=int, default=50, help="working orders")
    parser.add_argument("--only", nargs="+", choices=CANDIDATES, help="measure these candidates only")
    parser.add_argument(
        "--no-shim", action="store_true", help="show Perspective without DEFINE_ONCE (its later widgets fail)"
    )
    parser.add_argument("--json", type=Path, help="write every run's figures here")
    args = parser.parse_args(argv)
    if not CHROMIUM.is_file():
        parser.error(f"{CHROMIUM} is missing: apt-get install chromium")
    names = args.only or list(CANDIDATES)
    started = time.time()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="blotter-compare-") as tmp, lab_server(Path(tmp)) as lab:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                str(Path(tmp) / "profile"),
                executable_path=str(CHROMIUM),
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1400, "height": 1000},
            )
            try:
                for round_no in range(args.rounds):
                    turn = round_no % len(names)  # each round starts with the next candidate
                    for name in names[turn:] + names[:turn]:
                        print(f"round {round_no + 1}/{args.rounds}: {name} ...", flush=True)
                        result = measure(context, lab, name, args, round_no)
                        runs.append(result)
                        print("  " + json.dumps(result), flush=True)
            finally:
                context.close()
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "minutes": round((time.time() - started) / 60, 1),
        "machine": machine(),
        "runs": runs,
    }
    print_table(runs, names)
    print(json.dumps(report["machine"]))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
        print(f"figures of every run: {args.json}")
    return 1 if any(r.get("errors") or r.get("browser_errors") for r in runs) else 0


def machine() -> dict[str, Any]:
    def v(package: str) -> str:
        try:
            return version(package)
        except Exception:
            return "missing"

    chromium = subprocess.run([str(CHROMIUM), "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_1min": round(os.getloadavg()[0], 2),
        "chromium": chromium,
        **{
            p: v(p)
            for p in ("jupyterlab", "ipywidgets", "ipydatagrid", "perspective-python", "pyarrow", "anywidget")
        },
    }


@contextlib.contextmanager
def lab_server(base: Path) -> Any:
    """JupyterLab of this Python (so its labextensions: ipydatagrid, Perspective) with private Jupyter dirs."""
    root = base / "notebooks"
    root.mkdir()
    with start_lab(base, root) as lab:
        yield lab


def write_notebook(lab: Lab, name: str, args: argparse.Namespace, out: Path) -> str:
    import nbformat

    cells = [
        cell.format(
            here=str(HERE),
            orders=args.orders,
            name=name,
            out=str(out),
            warmup=SETTLE_SECONDS + 1.0,
            window=args.window,
            rate=args.rate,
        )
        for cell in CELLS
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    filename = f"blotter_{name.replace('-', '_')}.ipynb"
    nbformat.write(nb, lab.root / filename)
    return filename


def measure(context: Any, lab: Lab, name: str, args: argparse.Namespace, round_no: int) -> dict[str, Any]:
    out = lab.root / f"result-{name}-{round_no}.json"
    filename = write_notebook(lab, name, args, out)
    page = context.new_page()
    page.set_default_timeout(30_000)
    if name == "perspective" and not args.no_shim:
        page.add_init_script(DEFINE_ONCE)
    browser_errors: list[str] = []
    page.on("pageerror", lambda exc: browser_errors.append(f"pageerror: {exc}"))
    page.on("console", lambda m: m.type == "error" and browser_errors.append(f"console: {m.text}"[:500]))
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    try:
        page.goto(f"{lab.url}/lab/tree/{filename}?reset&token={lab.token}", wait_until="domcontentloaded")
        page.wait_for_selector(".jp-NotebookPanel .jp-CodeCell", timeout=60_000)
        wait_for(lambda: kernel_idle(page), 60, lambda: f"the kernel never became idle\n{lab.log_tail()}")
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        wait_for(
            lambda: cells_ran(page, name), 120, lambda: f"not every cell ran: {page.evaluate(CODE_PROMPTS)}"
        )
        output = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell-outputArea").first
        output.scroll_into_view_if_needed()
        time.sleep(SETTLE_SECONDS)
        before = metrics(cdp)
        sample = page.evaluate(FRAMES, args.window * 1000)
        after = metrics(cdp)
        shot = ROOT / "test-artifacts" / f"blotter-compare-{name}.png"
        shot.parent.mkdir(exist_ok=True)
        output.screenshot(path=str(shot), timeout=15_000)
        kernel = json.loads(
            wait_for(lambda: out.exists() and out.read_text(), 60, lambda: f"{name}: no {out}")
        )
    finally:
        page.close()
        lab.shutdown_kernels()
    frames = sorted(sample["times"][1:])
    seconds = args.window
    busy = {k: (after[k] - before[k]) for k in METRICS}
    return kernel | {
        "round": round_no + 1,
        "frames": len(frames),
        "frame_ms_median": round(statistics.median(frames), 1),
        "frame_ms_p95": round(frames[int(len(frames) * 0.95)], 1),
        "frame_ms_max": round(frames[-1], 1),
        "frames_over_50ms": sum(f > 50 for f in frames),
        "long_tasks": len(sample["long"]),
        "long_task_ms": round(sum(sample["long"]), 1),
        "main_thread_ms_per_s": round(busy["TaskDuration"] * 1000 / seconds, 1),
        "script_ms_per_s": round(busy["ScriptDuration"] * 1000 / seconds, 1),
        "layout_style_ms_per_s": round(
            (busy["LayoutDuration"] + busy["RecalcStyleDuration"]) * 1000 / seconds, 1
        ),
        "js_heap_mb": round(after["JSHeapUsedSize"] / 2**20, 1),
        "screenshot": str(shot.relative_to(ROOT)),
        "browser_errors": browser_errors,
    }


def cells_ran(page: Any, name: str) -> bool:
    """Every code cell ran; a cell that failed raises with its output."""
    outputs = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea").all_inner_texts()
    if errors := [o for o in outputs if "Traceback" in o or "Error" in o]:
        raise RuntimeError(f"{name}: a cell failed: {errors}")
    return all(re.fullmatch(r"\[\d+\]:", p) for p in page.evaluate(CODE_PROMPTS))


def metrics(cdp: Any) -> dict[str, float]:
    values = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return {k: float(values.get(k, 0.0)) for k in METRICS}


COLUMNS = (
    ("sent_bytes_per_update", "B/update sent", "{:,.0f}"),
    ("sent_payload_bytes_per_update", "payload B/upd", "{:,.0f}"),
    ("sent_bytes_per_second", "B/s sent", "{:,.0f}"),
    ("sent_messages_per_second", "msgs/s", "{:.1f}"),
    ("received_bytes_per_update", "B/upd recv", "{:,.0f}"),
    ("updates_per_second", "updates/s", "{:.1f}"),
    ("refresh_ms_per_tick", "refresh ms/tick", "{:.2f}"),
    ("frame_ms_median", "frame p50 ms", "{:.1f}"),
    ("frame_ms_p95", "frame p95 ms", "{:.1f}"),
    ("frame_ms_max", "frame max ms", "{:.1f}"),
    ("long_task_ms", "long tasks ms", "{:.0f}"),
    ("main_thread_ms_per_s", "main ms/s", "{:.0f}"),
    ("script_ms_per_s", "script ms/s", "{:.0f}"),
    ("layout_style_ms_per_s", "layout+style ms/s", "{:.0f}"),
    ("js_heap_mb", "JS heap MB", "{:.0f}"),
)


def print_table(runs: list[dict[str, Any]], names: list[str]) -> None:
    print(
        f"\nmedians over {max(r['round'] for r in runs)} round(s); quotes/s pushed: "
        + ", ".join(f"{r['quotes_per_second']:,.0f}" for r in runs if "quotes_per_second" in r)
    )
    width = max(len(n) for n in names) + 2
    print("".ljust(width) + "".join(label.rjust(max(len(label), 9) + 2) for _, label, _ in COLUMNS))
    for name in names:
        mine = [r for r in runs if r["candidate"] == name and "frames" in r]
        cells = []
        for key, label, fmt in COLUMNS:
            values = [r[key] for r in mine if key in r]
            text = fmt.format(statistics.median(values)) if values else "-"
            cells.append(text.rjust(max(len(label), 9) + 2))
        print(name.ljust(width) + "".join(cells))


if __name__ == "__main__":
    raise SystemExit(main())
