"""Tests for the house rules (issue 12): no import cycles, small modules, no engine underscore names, layers."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cmc_lab"
ENGINE = PACKAGE / "engine"
MAX_LINES = 600
#: The engine object is called ``eng`` or ``engine`` (or held as ``self._engine``); a dotted public path
#: after it (``eng.thresholds._actions``) reaches into a part the engine owns, and counts too.
ENGINE_PRIVATE = re.compile(r"\b(?:eng|engine|self\._engine|self\.engine)(?:\.[A-Za-z]\w*)*\._[a-z]\w*")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    # grimp counts every import statement: module level, inside functions and under TYPE_CHECKING.
    return grimp.build_graph("cmc_lab", cache_dir=None)


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _file_of(module: str) -> str:
    base = ROOT.joinpath(*module.split("."))
    path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
    return _rel(path)


def _strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    # Tarjan's algorithm, iterative.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def _describe_cycle(graph: grimp.ImportGraph, members: list[str]) -> str:
    inside = set(members)
    lines = [f"cycle of {len(members)} files:"]
    lines += [f"    {_file_of(module)}" for module in members]
    lines.append("  imports inside it:")
    for importer in members:
        for imported in sorted(graph.find_modules_directly_imported_by(importer) & inside):
            details = graph.get_import_details(importer=importer, imported=imported)
            where = ", ".join(f"l.{d['line_number']}" for d in details)
            lines.append(f"    {_file_of(importer)} ({where}) -> {imported}")
    return "\n".join(lines)


def test_no_import_cycle_among_cmc_lab_modules_counting_lazy_and_type_checking_imports(
    graph: grimp.ImportGraph,
) -> None:
    cycles = [members for members in _strongly_connected(graph) if len(members) > 1]
    cycles.sort(key=len, reverse=True)
    report = "\n\n".join(_describe_cycle(graph, members) for members in cycles)
    assert not cycles, f"{len(cycles)} import cycles among cmc_lab modules:\n\n{report}"


def test_no_cmc_lab_module_over_600_lines() -> None:
    sizes = {_rel(path): len(path.read_text(encoding="utf-8").splitlines()) for path in _sources()}
    over = sorted(((n, path) for path, n in sizes.items() if n > MAX_LINES), reverse=True)
    listing = "\n".join(f"    {path}: {n} lines" for n, path in over)
    assert not over, f"{len(over)} modules over {MAX_LINES} lines (split by responsibility):\n{listing}"


def test_no_engine_underscore_name_used_outside_engine_package() -> None:
    places = []
    for path in _sources():
        if path.is_relative_to(ENGINE):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            places += [f"    {_rel(path)}:{number}: {hit.group(0)}" for hit in ENGINE_PRIVATE.finditer(line)]
    listing = "\n".join(places)
    assert not places, (
        f"{len(places)} places outside cmc_lab/engine/ reach into an underscore name of the engine "
        f"(or of a part it owns):\n{listing}"
    )


def test_no_prefix_family_of_top_level_modules_in_cmc_lab() -> None:
    names = [path.stem for path in PACKAGE.glob("*.py") if path.stem != "__init__"]
    names += [path.name for path in PACKAGE.iterdir() if (path / "__init__.py").is_file()]
    families: dict[str, list[str]] = defaultdict(list)
    for name in sorted(names):
        families[name.lstrip("_").split("_", 1)[0]].append(name)
    crowded = {prefix: members for prefix, members in families.items() if len(members) > 1}
    listing = "\n".join(
        f"    {prefix}_*: {', '.join(members)}" for prefix, members in sorted(crowded.items())
    )
    assert not crowded, f"top-level prefix families in cmc_lab/ (make each a package):\n{listing}"


def test_import_linter_contracts_in_pyproject_are_kept() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    if not lint_imports.exists():
        pytest.fail(f"{lint_imports} not found: install the dev extras (pip install -e '.[dev]')")
    run = subprocess.run(
        [str(lint_imports), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, f"lint-imports found broken contracts:\n{run.stdout}{run.stderr}"
