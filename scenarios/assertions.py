"""SLO assertions: ``realtime.p95 <= 2s``, ``lost == 0``, ``dlq <= 5``, ``acme-health:batch.p95 <= 1h``.

An assertion names a metric of :mod:`scenarios.metrics` (optionally one
tenant's, as ``tenant:metric``), a comparison and a limit with an optional
unit (``ms``, ``s``, ``min``/``m``, ``h`` for durations, ``%`` for shares).
It is judged against the flat metric dict a replay produces; a metric that
is missing or not a number fails with a reason (never passes silently).
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from typing import Callable, Mapping

from .errors import AssertionSpecError

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt, "==": operator.eq, "!=": operator.ne}
_UNITS = {"": 1.0, "s": 1.0, "ms": 0.001, "m": 60.0, "min": 60.0, "h": 3600.0, "%": 0.01}
_RE = re.compile(r"^\s*(?:(?P<tenant>[a-z][a-z0-9-]*):)?(?P<metric>[a-z_][a-z0-9_.]*)\s*"
                 r"(?P<op><=|>=|==|!=|<|>)\s*(?P<num>-?[0-9]*\.?[0-9]+)\s*(?P<unit>ms|min|s|m|h|%|)\s*$")
# Lower is better for every metric but these (used to say "regressed" in a diff).
HIGHER_IS_BETTER = ("completed", "slo_attainment", "throughput_per_hour")


@dataclass(frozen=True)
class Assertion:
    """One objective: a metric compared with a limit."""

    metric: str
    op: str
    limit: float
    tenant: str | None = None
    text: str = ""

    @property
    def key(self) -> str:
        """The metric's key in a replay's metric dict."""
        return f"{self.tenant}:{self.metric}" if self.tenant else self.metric

    def judge(self, metrics: Mapping[str, float]) -> "Verdict":
        value = metrics.get(self.key)
        if value is None:
            return Verdict(self, None, False, f"no metric {self.key!r} in this replay")
        if isinstance(value, float) and math.isnan(value):
            return Verdict(self, value, False, f"{self.key} is undefined (no completed jobs)")
        ok = _OPS[self.op](float(value), self.limit)
        return Verdict(self, float(value), ok, "")

    def __str__(self) -> str:
        return self.text or f"{self.key} {self.op} {self.limit:g}"


@dataclass(frozen=True)
class Verdict:
    """An assertion's outcome on one replay."""

    assertion: Assertion
    value: float | None
    passed: bool
    reason: str = ""


def parse_assertion(text: str) -> Assertion:
    """Read ``[tenant:]metric OP number[unit]``; raises :class:`AssertionSpecError` naming the problem."""
    from .metrics import is_metric

    if not isinstance(text, str):
        raise AssertionSpecError(f"an assertion is a string like 'realtime.p95 <= 2s', got {text!r}")
    m = _RE.match(text)
    if not m:
        raise AssertionSpecError(f"cannot read assertion {text!r}; write e.g. 'realtime.p95 <= 2s' or 'lost == 0'")
    if not is_metric(m["metric"]):
        raise AssertionSpecError(f"unknown metric {m['metric']!r} in {text!r} (see scenarios/metrics.py)")
    limit = float(m["num"]) * _UNITS[m["unit"]]
    return Assertion(metric=m["metric"], op=m["op"], limit=limit, tenant=m["tenant"], text=" ".join(text.split()))


def judge_all(assertions: tuple[Assertion, ...] | list[Assertion], metrics: Mapping[str, float]) -> list[Verdict]:
    return [a.judge(metrics) for a in assertions]
