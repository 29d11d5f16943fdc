"""Pure pricing layer, custom formulas: a spread formula parsed safely and evaluated elementwise.

No IO, no engine, no threads. A formula is an expression over the legs' raw prices by symbol
(``au2702``, or ``au`` when one leg is a month of SHFE au) or ``VENUE_symbol`` (``SHFE_au2702``) and
``USDCNH`` / ``USDCNY``; only numbers, those
names, ``+ - * / **``, parentheses and a few numpy functions pass :func:`parse_formula`.
:mod:`cmc_lab.pricing.spreads` re-exports nothing from here: :class:`~cmc_lab.pricing.spreads.SpreadDef` is the
public face.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np

from cmc_lab.core.instruments import Instrument
from cmc_lab.pricing.units import PriceLike

_FUNCTIONS: Mapping[str, tuple[Any, int]] = MappingProxyType(
    {  # name -> (numpy function, arity; 0 = two or more)
        "abs": (np.abs, 1),
        "exp": (np.exp, 1),
        "log": (np.log, 1),
        "sqrt": (np.sqrt, 1),
        "min": (np.minimum, 0),
        "max": (np.maximum, 0),
    }
)
_BINARY_OPS: Mapping[type[ast.operator], Any] = MappingProxyType(
    {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.true_divide, ast.Pow: np.power}
)
_UNARY_OPS: Mapping[type[ast.unaryop], Any] = MappingProxyType({ast.USub: np.negative, ast.UAdd: np.positive})
FX_NAMES = ("USDCNH", "USDCNY")
_MAX_FORMULA_CHARS = 1000  # deeper nesting than this could exhaust the parser's recursion


def _formula_help(names: Sequence[str]) -> str:
    return (
        f"a formula may use numbers, the names {', '.join(names)}, + - * / **, parentheses "
        f"and the functions {', '.join(sorted(_FUNCTIONS))}"
    )


def parse_formula(formula: str, names: Sequence[str]) -> tuple[ast.expr, set[str]]:
    """The parsed formula and the names it uses, or a ValueError naming the offending token."""
    if len(formula) > _MAX_FORMULA_CHARS:
        raise ValueError(
            f"formula is {len(formula)} characters long, over the limit of {_MAX_FORMULA_CHARS}; write it shorter"
        )
    try:
        tree = ast.parse(formula.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(
            f"formula {formula!r} is not a single expression ({exc.msg}, column {exc.offset}); "
            f"{_formula_help(names)}"
        ) from None
    source = formula.strip()
    used: set[str] = set()

    def bad(node: ast.AST, what: str) -> ValueError:
        token = ast.get_source_segment(source, node) or type(node).__name__
        return ValueError(f"formula {formula!r}: {what} {token!r} is not allowed; {_formula_help(names)}")

    def check(node: ast.AST) -> None:
        if isinstance(node, ast.BinOp):
            if type(node.op) not in _BINARY_OPS:
                raise bad(node, "operator in")
            check(node.left)
            check(node.right)
        elif isinstance(node, ast.UnaryOp):
            if type(node.op) not in _UNARY_OPS:
                raise bad(node, "operator in")
            check(node.operand)
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                raise bad(node, "constant")
        elif isinstance(node, ast.Name):
            if node.id not in names:
                raise ValueError(f"formula {formula!r}: unknown name {node.id!r}; known: {', '.join(names)}")
            used.add(node.id)
        elif isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
                raise bad(node.func, "function")
            if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
                raise bad(node, "keyword or starred argument in")
            arity = _FUNCTIONS[node.func.id][1]
            if (arity and len(node.args) != arity) or (not arity and len(node.args) < 2):
                wanted = f"{arity} argument" if arity else "two or more arguments"
                raise bad(node, f"call (takes {wanted})")
            for arg in node.args:
                check(arg)
        else:
            raise bad(node, type(node).__name__.lower())

    check(tree.body)
    return tree.body, used


def evaluate(node: ast.expr, env: Mapping[str, PriceLike]) -> Any:
    # Only the node types _parse_formula lets through reach here; numbers become floats so
    # that ``9 ** 9 ** 9`` overflows to inf instead of computing a huge integer.
    if isinstance(node, ast.BinOp):
        return _BINARY_OPS[type(node.op)](evaluate(node.left, env), evaluate(node.right, env))
    if isinstance(node, ast.UnaryOp):
        return _UNARY_OPS[type(node.op)](evaluate(node.operand, env))
    if isinstance(node, ast.Constant):
        return np.float64(float(node.value))  # type: ignore[arg-type]
    if isinstance(node, ast.Name):
        return env[node.id]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        func = _FUNCTIONS[node.func.id][0]
        values = [evaluate(arg, env) for arg in node.args]
        result = values[0]
        for value in values[1:]:
            result = func(result, value)
        return func(result) if len(values) == 1 else result
    raise AssertionError(f"unchecked formula node {ast.dump(node)}")


def formula_leg_names(instruments: Sequence[Instrument]) -> dict[str, int]:
    """Each leg's names in a formula: its symbol (``au2702``) and ``VENUE_symbol``, and its product's
    (``au``, ``SHFE_au``) when no other leg is a month of the same product."""
    reserved = {*FX_NAMES, *_FUNCTIONS}
    products = [inst.product_id for inst in instruments]
    names: dict[str, int] = {}
    for i, inst in enumerate(instruments):
        own = [inst.symbol, f"{inst.venue}_{inst.symbol}"]
        if inst.product and products.count(inst.product) == 1:
            product_symbol = inst.product.partition(".")[2]
            own += [product_symbol, f"{inst.venue}_{product_symbol}"]
        for name in own:
            if name.isidentifier() and name not in reserved and name not in names:
                names[name] = i
    symbols = [inst.symbol for inst in instruments]
    return {name: i for name, i in names.items() if symbols.count(name) <= 1}
