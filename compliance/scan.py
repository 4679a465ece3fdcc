"""The scanner: collect once, run every check, roll results up to controls.

:func:`evaluate` is pure (an inventory and a config in, a :class:`ScanReport`
out); :func:`scan` adds the one collection pass through a
:class:`~comfyfab.cloud.Cloud`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from comfyfab.cloud import Cloud
from comfyfab.config import FabricConfig

from .catalog import Catalog, load_catalog
from .checks import Outcome, Status
from .collect import collect
from .inventory import Inventory


class CheckError(RuntimeError):
    """A check raised instead of returning outcomes: a bug in the check, named here."""


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict on one resource, stamped with the check's identity and severity."""

    check_id: str
    title: str
    severity: str
    resource: str
    status: Status
    message: str
    evidence: Mapping[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"check_id": self.check_id, "title": self.title, "severity": self.severity,
                "resource": self.resource, "status": self.status.value, "message": self.message,
                "evidence": dict(self.evidence)}


@dataclass(frozen=True)
class ControlResult:
    """A framework requirement's status, rolled up from its checks."""

    framework: str
    requirement: str
    title: str
    status: Status
    checks: tuple[str, ...]
    failing: tuple[str, ...]


def rollup(statuses: Iterable[Status]) -> Status:
    """FAIL beats UNVERIFIED beats PASS; nothing judged is UNVERIFIED (never a silent pass)."""
    seen = set(statuses)
    if Status.FAIL in seen:
        return Status.FAIL
    if Status.UNVERIFIED in seen or not seen:
        return Status.UNVERIFIED
    return Status.PASS


@dataclass(frozen=True)
class ScanReport:
    """Everything one scan found, plus what it ran against."""

    results: tuple[CheckResult, ...]
    controls: tuple[ControlResult, ...]
    check_status: Mapping[str, Status]
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def failed_checks(self) -> list[str]:
        return sorted(c for c, s in self.check_status.items() if s is Status.FAIL)

    @property
    def unverified_checks(self) -> list[str]:
        return sorted(c for c, s in self.check_status.items() if s is Status.UNVERIFIED)

    @property
    def failed_controls(self) -> list[str]:
        return [f"{c.framework}:{c.requirement}" for c in self.controls if c.status is Status.FAIL]

    @property
    def ok(self) -> bool:
        return not self.failed_checks

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status}
        for r in self.results:
            out[r.status.value] += 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "meta": dict(self.meta),
            "summary": {"checks": {s.value: sum(1 for v in self.check_status.values() if v is s) for s in Status},
                        "results": self.counts(),
                        "failed_controls": self.failed_controls},
            "controls": [{"framework": c.framework, "requirement": c.requirement, "title": c.title,
                          "status": c.status.value, "checks": list(c.checks), "failing": list(c.failing)}
                         for c in self.controls],
            "checks": {c: s.value for c, s in sorted(self.check_status.items())},
            "results": [r.as_dict() for r in self.results],
        }


def run_check(check_id: str, func, inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    try:
        outcomes = func(inv, cfg)
    except Exception as exc:
        raise CheckError(f"check {check_id} raised {type(exc).__name__}: {exc}") from exc
    if not all(isinstance(o, Outcome) for o in outcomes):
        raise CheckError(f"check {check_id} returned something other than Outcome objects")
    return outcomes


def evaluate(inv: Inventory, cfg: FabricConfig, catalog: Catalog | None = None,
             meta: Mapping[str, Any] | None = None) -> ScanReport:
    """Run every catalogued check over ``inv``; pure."""
    catalog = catalog or load_catalog()
    results: list[CheckResult] = []
    status: dict[str, Status] = {}
    for cid, check in sorted(catalog.checks.items()):
        outcomes = run_check(cid, check.func, inv, cfg)
        status[cid] = rollup(o.status for o in outcomes)
        if not outcomes:
            outcomes = [Outcome("(none)", Status.UNVERIFIED, f"{cid}: nothing to judge in this account")]
        results += [CheckResult(cid, check.meta.title, check.meta.severity, o.resource, o.status, o.message,
                                o.evidence) for o in outcomes]
    controls = tuple(
        ControlResult(fw.framework, r.id, r.title, rollup(status[c] for c in r.checks), tuple(r.checks),
                      tuple(c for c in r.checks if status[c] is Status.FAIL))
        for fw in catalog.frameworks.values() for r in fw.requirements)
    return ScanReport(results=tuple(results), controls=controls, check_status=status, meta=dict(meta or {}))


def scan(cloud: Cloud, cfg: FabricConfig, catalog: Catalog | None = None) -> ScanReport:
    """Collect the account behind ``cloud`` once and evaluate every check."""
    started = time.perf_counter()
    inv = collect(cloud, cfg)
    collected = time.perf_counter()
    meta = {
        "fabric": cfg.name, "config_digest": cfg.digest(), "backend": cloud.describe(),
        "account": inv.account_id, "region": inv.region,
        "scanned_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    report = evaluate(inv, cfg, catalog, meta)
    timing = {"collect_s": round(collected - started, 3), "evaluate_s": round(time.perf_counter() - collected, 3)}
    return ScanReport(report.results, report.controls, report.check_status, {**meta, **timing})
