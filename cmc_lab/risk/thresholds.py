"""Threshold rules: metrics watched against warn / act / liquidation levels, crossings and actions.

State layer on the engine loop, with a facade (:class:`Thresholds`, ``eng.thresholds``) whose
``add`` validates in the caller's thread. A rule's value for each key (an account, an instrument,
a spread, a venue) moves through its levels with hysteresis; each move is a :class:`Crossing`,
journaled (``ThresholdCrossed`` / ``ThresholdCleared``), and a level crossed upwards runs its
actions, each journaled (``ThresholdAction``) with the crossing that caused it and the time from
crossing to action. The metric values and the actions themselves live in
:mod:`cmc_lab.risk.monitor`.
"""

from __future__ import annotations

import asyncio
import difflib
import itertools
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from html import escape
from typing import Any

import pandas as pd

from cmc_lab.core.ports import MarketView
from cmc_lab.core.runner import Runner
from cmc_lab.risk.account_terms import to_money
from cmc_lab.risk.metrics import ACTIONS, LEVELS, METRICS, Metric
from cmc_lab.risk.rules import ActionRecord, Crossing, MetricSource, Rule


@dataclass
class _KeyState:
    level: int = 0  # how many of the rule's levels are crossed
    value: float | None = None
    crossings: list[str] = field(default_factory=list)  # ids of the crossings holding each level


@dataclass
class _RuleState:
    rule: Rule
    keys: dict[str, _KeyState] = field(default_factory=dict)
    last_eval_ns: int | None = None
    pending: asyncio.TimerHandle | None = None


class Thresholds:
    """The threshold rules of one engine (``eng.thresholds``), their crossings and actions.

    Examples
    --------
    >>> eng.thresholds.add("margin_utilisation", warn=0.7, act=0.8, action="transfer")  # doctest: +SKIP
    >>> eng.thresholds.crossings()                                                       # doctest: +SKIP
    """

    #: Every rule is also re-evaluated on a timer (market seconds), for time-driven metrics.
    period_s = 0.5

    def __init__(self, runner: Runner, market: MarketView, monitor: MetricSource) -> None:
        self._runner = runner
        self._market = market
        self._monitor = monitor
        self._rules: dict[str, _RuleState] = {}
        self._by_group: dict[str, list[_RuleState]] = {}
        self._crossings: list[Crossing] = []
        self._actions: list[ActionRecord] = []
        self._seq = 0
        self._timer: asyncio.TimerHandle | None = None

    # ================================================================== caller thread

    def add(
        self,
        metric: str,
        *,
        warn: float | None = None,
        act: float | None = None,
        liquidation: float | None = None,
        action: str | Sequence[str] = "alert",
        on_liquidation: str | Sequence[str] = "halt",
        scope: str = "*",
        hysteresis: float | None = None,
        min_interval_ms: float = 50.0,
        window_s: float = 60.0,
        min_count: int = 5,
        min_buffer: float | str | Decimal = 0,
        target: float | None = None,
        reduce_fraction: float = 0.5,
        source: str | None = None,
    ) -> Rule:
        """Watch ``metric`` against its levels; a rule for the same metric and scope is replaced.

        Parameters
        ----------
        metric
            One of :data:`METRICS` (``eng.thresholds.metrics()`` lists them).
        warn, act, liquidation
            Levels, in the metric's unit (utilisation 0.8 is 80 %). Crossing ``warn`` raises an
            alert; crossing ``act`` raises an alert and runs ``action``; ``liquidation`` (margin
            metrics only) runs ``on_liquidation``. For ``available_funds`` danger is below:
            warn > act > liquidation.
        action, on_liquidation
            One or more of alert, block (REDUCING: only reducing orders), cancel (working orders
            in scope), transfer (from the account with the most headroom; margin metrics of one
            account), reduce (cancel, then unwind hedged spreads in scope with opposite hedge
            tickets; for ``position``, an IOC order back to the warn level), halt (kill switch).
        scope
            Which keys: ``"*"`` every one; an account name, ``"unified"``, an instrument id, a
            spread name or a venue, as the metric's keys are.
        hysteresis
            A level clears only once the value is back past it by this much (default 2 % of the
            first level), so an alert does not flap.
        min_interval_ms
            At most one evaluation per this many milliseconds of market time; events in between
            are evaluated at the end of the interval.
        window_s, min_count
            Window of the windowed metrics (slippage, latency, reject rate) and the fewest orders
            a reject rate needs.
        min_buffer
            ``transfer``: available funds (base currency) the source account keeps after it.
        target
            ``transfer``: utilisation to bring the account back to (default: warn less hysteresis).
        source
            ``transfer``: the account the money comes from, e.g. ``"CN-FUT"`` (default: the
            account with the most headroom above ``min_buffer``).
        reduce_fraction
            ``reduce``: share of each open spread position to unwind (at least one unit).

        Examples
        --------
        >>> eng.thresholds.add("margin_utilisation", warn=0.7, act=0.8, liquidation=0.95,
        ...                    action="transfer", min_buffer=5_000_000)   # doctest: +SKIP
        """
        rule = self._validate(
            metric,
            warn=warn,
            act=act,
            liquidation=liquidation,
            action=action,
            on_liquidation=on_liquidation,
            scope=scope,
            hysteresis=hysteresis,
            min_interval_ms=min_interval_ms,
            window_s=window_s,
            min_count=min_count,
            min_buffer=min_buffer,
            target=target,
            reduce_fraction=reduce_fraction,
            source=source,
        )
        return self._runner.call(self._install(rule))

    def remove(self, rule: Rule | str) -> None:
        """Stop watching a rule (by object or id); its raised levels are dropped, not cleared."""
        rule_id = rule.rule_id if isinstance(rule, Rule) else rule
        if rule_id not in self._rules:
            raise KeyError(f"no threshold rule {rule_id!r}; rules: {', '.join(self._rules) or 'none'}")
        self._runner.call(self._uninstall(rule_id))

    def metrics(self) -> pd.DataFrame:
        """The metrics a rule can watch: direction, keys, unit, allowed actions."""
        return pd.DataFrame(
            [
                {
                    "metric": m.name,
                    "danger": m.worse,
                    "keys": m.keys,
                    "unit": m.unit,
                    "liquidation level": m.liquidation,
                    "actions": ", ".join(m.actions),
                    "description": m.description,
                }
                for m in METRICS.values()
            ]
        ).set_index("metric")

    def rules(self) -> pd.DataFrame:
        rows = []
        for st in list(self._rules.values()):
            row = asdict(st.rule)
            row["action"] = "+".join(st.rule.action)
            row["on_liquidation"] = "+".join(st.rule.on_liquidation)
            row["raised"] = {k: _level_names(st.rule)[s.level - 1] for k, s in st.keys.items() if s.level}
            rows.append(row)
        return pd.DataFrame(rows)

    def crossings(self) -> pd.DataFrame:
        """Every crossing and clearing: rule, key, level, value, threshold, time."""
        frame = pd.DataFrame([asdict(c) for c in list(self._crossings)])
        if not frame.empty:
            frame["time"] = pd.to_datetime(frame.pop("ts_ns"), unit="ns", utc=True)
        return frame

    def action_records(self) -> list[ActionRecord]:
        """Every action run, oldest first, as records (``actions()`` is the same as a DataFrame)."""
        return list(self._actions)

    def actions(self) -> pd.DataFrame:
        """Every action run, with the crossing that caused it and the delay since that crossing."""
        frame = pd.DataFrame([asdict(a) for a in self.action_records()])
        if not frame.empty:
            frame["time"] = pd.to_datetime(frame.pop("ts_ns"), unit="ns", utc=True)
        return frame

    def state(self) -> pd.DataFrame:
        """The last value and raised level of every rule and key."""
        rows = [
            {
                "rule": st.rule.rule_id,
                "key": key,
                "value": ks.value,
                "level": _level_names(st.rule)[ks.level - 1] if ks.level else "normal",
            }
            for st in list(self._rules.values())
            for key, ks in list(st.keys.items())
        ]
        return pd.DataFrame(rows)

    def __len__(self) -> int:
        return len(self._rules)

    def __repr__(self) -> str:
        if not self._rules:
            return "Thresholds(no rules)"
        return "Thresholds(\n" + "\n".join(f"  {st.rule.describe()}" for st in self._rules.values()) + "\n)"

    def _repr_html_(self) -> str:
        rows = ""
        for st in list(self._rules.values()):
            raised = ", ".join(
                f"{escape(k)}: {_level_names(st.rule)[s.level - 1]}" for k, s in st.keys.items() if s.level
            )
            rows += f"<tr><td>{escape(st.rule.describe())}</td><td>{raised or 'normal'}</td></tr>"
        return f"<table class='cmc-thresholds'><tr><th>rule</th><th>raised</th></tr>{rows}</table>"

    # ------------------------------------------------------------------ validation

    def _validate(self, metric: str, **kw: Any) -> Rule:
        spec = METRICS.get(metric) if isinstance(metric, str) else None
        if spec is None:
            close = difflib.get_close_matches(str(metric), METRICS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(f"unknown metric {metric!r}; {hint}metrics: {', '.join(METRICS)}")
        levels = {name: _level(metric, name, kw[name]) for name in LEVELS}
        if levels["warn"] is None and levels["act"] is None:
            raise ValueError(f"{metric}: give warn=... and/or act=...; a rule without levels never fires")
        if levels["liquidation"] is not None and not spec.liquidation:
            raise ValueError(
                f"{metric}: a liquidation level applies to margin metrics only "
                "(margin_utilisation, available_funds); use warn and act"
            )
        if spec.unit == "ratio" and metric == "margin_utilisation":
            for name, v in levels.items():
                if v is not None and v > 5:
                    raise ValueError(
                        f"{metric}: {name}={v:g} looks like a percentage; utilisation is a fraction, "
                        f"write 0.8 for 80 %"
                    )
        if metric == "reject_rate":
            for name, v in levels.items():
                if v is not None and v > 1:
                    raise ValueError(f"reject_rate: {name}={v:g} must be a fraction <= 1 (0.2 is 20 %)")
        given = [(n, v) for n, v in levels.items() if v is not None]
        for (n1, v1), (n2, v2) in itertools.pairwise(given):
            bad = v1 >= v2 if spec.worse == "above" else v1 <= v2
            if bad:
                order = "below" if spec.worse == "above" else "above"
                raise ValueError(
                    f"{metric}: {n1}={v1:g} must be {order} {n2}={v2:g} (danger is {spec.worse}: "
                    f"{' < '.join(n for n, _ in given) if spec.worse == 'above' else ' > '.join(n for n, _ in given)})"
                )
        action = _actions(metric, spec, "action", kw["action"])
        on_liq = _actions(metric, spec, "on_liquidation", kw["on_liquidation"])
        if levels["act"] is None and action != ("alert",):
            raise ValueError(
                f"{metric}: action={'+'.join(action)!r} runs when the act level is crossed; give act=..."
            )
        scope = self._scope(metric, spec, kw["scope"])
        if "transfer" in action + on_liq and (scope == "unified" or spec.keys != "account"):
            raise ValueError(
                f"{metric}: action 'transfer' moves money into one account; scope it to an account or '*' "
                "(each account), not 'unified'"
            )
        first = next(v for _, v in given)
        hysteresis = kw["hysteresis"]
        if hysteresis is None:
            hysteresis = round(abs(first) * 0.02, 12)
        hysteresis = _number(metric, "hysteresis", hysteresis)
        if hysteresis < 0:
            raise ValueError(f"{metric}: hysteresis={hysteresis:g} must be >= 0")
        min_interval = _number(metric, "min_interval_ms", kw["min_interval_ms"])
        window = _number(metric, "window_s", kw["window_s"])
        if min_interval < 0 or window <= 0:
            raise ValueError(f"{metric}: min_interval_ms must be >= 0 and window_s above 0")
        min_count = kw["min_count"]
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise ValueError(f"{metric}: min_count={min_count!r} must be a whole number >= 1")
        buffer = to_money(kw["min_buffer"], "min_buffer")
        if buffer < 0:
            raise ValueError(f"{metric}: min_buffer={buffer} must be >= 0 (base currency)")
        target = kw["target"]
        if target is not None:
            target = _number(metric, "target", target)
        transfers = "transfer" in action or (levels["liquidation"] is not None and "transfer" in on_liq)
        if metric == "margin_utilisation" and transfers:
            limit = next(v for v in (levels["act"], levels["liquidation"]) if v is not None)
            if target is None:
                base = levels["warn"] if levels["warn"] is not None else limit * 0.85
                target = base - hysteresis
            if not 0 < target < limit:
                raise ValueError(
                    f"{metric}: target={target:g} must be above 0 and below the act level {limit:g}: the "
                    "transfer brings utilisation back down to it"
                )
        source = kw["source"]
        if source is not None:
            accounts = [a for a in self._monitor.scope_names("account") if a != "unified"]
            if not transfers and "transfer" not in on_liq:
                raise ValueError(
                    f"{metric}: source={source!r} names where a transfer takes money from; add action='transfer'"
                )
            if source not in accounts:
                raise ValueError(
                    f"{metric}: source={source!r} is not an account; use one of {', '.join(sorted(accounts))}"
                )
            source = self._monitor.canonical_scope("account", source)
            if source == scope:
                raise ValueError(
                    f"{metric}: source {source!r} is the account the rule watches; name another one"
                )
        fraction = _number(metric, "reduce_fraction", kw["reduce_fraction"])
        if not 0 < fraction <= 1:
            raise ValueError(f"{metric}: reduce_fraction={fraction:g} must be above 0 and at most 1")
        return Rule(
            rule_id=f"{metric}[{scope}]",
            metric=metric,
            scope=scope,
            warn=levels["warn"],
            act=levels["act"],
            liquidation=levels["liquidation"],
            action=action,
            on_liquidation=on_liq,
            hysteresis=hysteresis,
            min_interval_ms=min_interval,
            window_s=window,
            min_count=min_count,
            min_buffer=buffer,
            target=target,
            reduce_fraction=fraction,
            source=source,
        )

    def _scope(self, metric: str, spec: Metric, scope: Any) -> str:
        if not isinstance(scope, str) or not scope:
            raise ValueError(f"{metric}: scope={scope!r} must be a name or '*'")
        if scope == "*":
            return scope
        known = self._monitor.scope_names(spec.keys)
        if spec.keys == "instrument":  # a product (COMEX.GC) is its main month
            scope = self._market.aliases.get(scope, scope)
        if scope not in known:
            what = {"account": "an account, 'unified'", "engine": "nothing but"}.get(
                spec.keys, f"a {spec.keys}"
            )
            raise ValueError(
                f"{metric}: scope {scope!r} is not known; give {what} or '*' (known: {', '.join(known) or 'none'})"
            )
        return self._monitor.canonical_scope(spec.keys, scope)

    # ================================================================== engine loop

    async def _install(self, rule: Rule) -> Rule:
        old = self._rules.pop(rule.rule_id, None)
        if old is not None:
            self._drop(old)
        st = _RuleState(rule)
        self._rules[rule.rule_id] = st
        self._by_group.setdefault(rule.spec.group, []).append(st)
        payload = {k: _plain(v) for k, v in asdict(rule).items()}
        self._monitor.journal("ThresholdAdded", {**payload, "replaced": old is not None})
        self._evaluate(st)
        if self._timer is None:
            self._timer = self._runner.loop.call_later(self.period_s, self._on_timer)
        return rule

    async def _uninstall(self, rule_id: str) -> None:
        st = self._rules.pop(rule_id, None)
        if st is not None:
            self._drop(st)
            self._monitor.journal("ThresholdRemoved", {"rule_id": rule_id})

    def _drop(self, st: _RuleState) -> None:
        group = self._by_group.get(st.rule.spec.group, [])
        if st in group:
            group.remove(st)
        if st.pending is not None:
            st.pending.cancel()
        for key, ks in st.keys.items():
            if ks.level:
                self._monitor.on_released(st.rule, key)

    def _on_timer(self) -> None:
        self._timer = None
        if not self._rules:
            return
        for st in list(self._rules.values()):
            self._due(st)
        self._timer = self._runner.loop.call_later(self.period_s, self._on_timer)

    def poke(self, group: str, now: bool = False) -> None:
        """Something the group's metrics depend on changed: evaluate them, rate-limited per rule
        unless ``now`` (a rare, deliberate change: a margin rate, a transfer).
        """
        for st in self._by_group.get(group, ()):
            if now:
                self._evaluate(st)
            else:
                self._due(st)

    def _due(self, st: _RuleState) -> None:
        now = self._market.mono_ns()
        gap = int(st.rule.min_interval_ms * 1e6)
        if st.last_eval_ns is None or now - st.last_eval_ns >= gap:
            self._evaluate(st)
        elif st.pending is None:
            wait = (st.last_eval_ns + gap - now) / 1e9
            st.pending = self._runner.loop.call_later(wait, self._deferred, st)

    def _deferred(self, st: _RuleState) -> None:
        st.pending = None
        if self._rules.get(st.rule.rule_id) is st:
            self._evaluate(st)

    def _evaluate(self, st: _RuleState) -> None:
        st.last_eval_ns = self._market.mono_ns()
        if st.pending is not None:
            st.pending.cancel()
            st.pending = None
        try:
            values = self._monitor.values(st.rule)
            for key, value in values.items():
                if value is not None and not math.isnan(value):
                    self._step(st, key, value)
        except Exception as exc:  # a rule must never stop the quote path
            self._runner.report([f"threshold {st.rule.rule_id} failed: {exc!r}"])

    def _step(self, st: _RuleState, key: str, value: float) -> None:
        rule = st.rule
        ks = st.keys.setdefault(key, _KeyState())
        ks.value = value
        levels = rule.levels()
        above = rule.spec.worse == "above"
        moved = False
        while ks.level < len(levels):
            name, threshold = levels[ks.level]
            if not (value >= threshold if above else value <= threshold):
                break
            ks.level += 1
            moved = True
            crossing = self._record(rule, key, name, "crossed", value, threshold)
            ks.crossings.append(crossing.crossing_id)
            for action in rule.actions_for(name):
                self._run(rule, crossing, action)
        while not moved and ks.level > 0:
            name, threshold = levels[ks.level - 1]
            back = threshold - rule.hysteresis if above else threshold + rule.hysteresis
            if not (value < back if above else value > back):
                break
            ks.level -= 1
            ks.crossings.pop()
            crossing = self._record(rule, key, name, "cleared", value, back)
            if name == "act":
                self._monitor.on_released(rule, key)

    def _record(
        self, rule: Rule, key: str, level: str, kind: str, value: float, threshold: float
    ) -> Crossing:
        self._seq += 1
        crossing = Crossing(
            crossing_id=f"C{self._seq:04d}",
            rule_id=rule.rule_id,
            metric=rule.metric,
            key=key,
            level=level,
            kind=kind,
            value=value,
            threshold=threshold,
            ts_ns=self._market.now_ns(),
            mono_ns=self._market.mono_ns(),
            perf_ns=time.perf_counter_ns(),
        )
        self._crossings.append(crossing)
        payload = {k: _plain(v) for k, v in asdict(crossing).items() if k not in ("ts_ns", "perf_ns")}
        self._monitor.journal("ThresholdCrossed" if kind == "crossed" else "ThresholdCleared", payload)
        return crossing

    def _run(self, rule: Rule, crossing: Crossing, action: str) -> None:
        try:
            ok, detail = self._monitor.run_action(rule, crossing, action)
        except Exception as exc:
            ok, detail = False, f"action failed: {exc!r}"
            self._runner.report([f"threshold action {action} of {rule.rule_id} failed: {exc!r}"])
        record = ActionRecord(
            crossing_id=crossing.crossing_id,
            rule_id=rule.rule_id,
            key=crossing.key,
            level=crossing.level,
            action=action,
            ok=ok,
            detail=detail,
            delay_ns=self._market.mono_ns() - crossing.mono_ns,
            cpu_ns=time.perf_counter_ns() - crossing.perf_ns,
            ts_ns=self._market.now_ns(),
        )
        self._actions.append(record)
        if action != "alert":
            payload = {k: _plain(v) for k, v in asdict(record).items() if k != "ts_ns"}
            self._monitor.journal("ThresholdAction", payload)


def _level_names(rule: Rule) -> list[str]:
    return [name for name, _ in rule.levels()]


def _number(metric: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError(f"{metric}: {name}={value!r} must be a number")
    if isinstance(value, Decimal) and not value.is_finite():  # float() refuses a signaling NaN
        raise ValueError(f"{metric}: {name}={value!r} must be finite")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{metric}: {name}={value!r} must be finite")
    return out


def _level(metric: str, name: str, value: Any) -> float | None:
    if value is None:
        return None
    out = _number(metric, name, value)
    if out < 0:
        raise ValueError(f"{metric}: {name}={out:g} is negative; every metric is >= 0, give a level >= 0")
    return out


def _actions(metric: str, spec: Metric, what: str, value: str | Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        items: tuple[Any, ...] = (value,)
    elif isinstance(value, list | tuple | set | frozenset):
        items = tuple(value)
    else:
        raise ValueError(
            f"{metric}: {what}={value!r} must be an action or a list of them; use {', '.join(spec.actions)}"
        )
    if not items:
        raise ValueError(f"{metric}: {what} is empty; give one of {', '.join(spec.actions)}")
    for item in items:
        if item not in ACTIONS:
            raise ValueError(f"{metric}: unknown {what} {item!r}; actions: {', '.join(ACTIONS)}")
        if item not in spec.actions:
            raise ValueError(
                f"{metric}: {what} {item!r} does not apply; for {metric} use {', '.join(spec.actions)}"
            )
    return tuple(dict.fromkeys(items))


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value
