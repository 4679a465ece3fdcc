"""The control catalog: checks with their metadata, and frameworks as data.

Checks are discovered from ``compliance/checks/<service>/<id>.metadata.json``;
the module ``<id>.py`` beside it must define a function named ``<id>``, and
the metadata's ``id`` must equal the file stem.  Frameworks
(``compliance/frameworks/*.json``) map each requirement to check ids; a
framework naming an unknown check is refused.  Everything is validated when
loaded, so a mismatch fails at import of the catalog, not mid-scan.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from comfyfab.config import FabricConfig

from .checks import Outcome
from .inventory import Inventory

ROOT = Path(__file__).parent
CHECKS_DIR = ROOT / "checks"
FRAMEWORKS_DIR = ROOT / "frameworks"
META_SUFFIX = ".metadata.json"

CheckFunc = Callable[[Inventory, FabricConfig], list[Outcome]]


class CatalogError(ValueError):
    """The catalog on disk is inconsistent; the message names the file."""


class CheckMeta(BaseModel):
    """What a check is for: the metadata file beside its code."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_]+$")
    title: str
    service: str
    severity: Literal["critical", "high", "medium", "low"]
    resources: tuple[str, ...] = Field(min_length=1)
    rationale: str = Field(min_length=10)
    remediation: str = Field(min_length=10)


@dataclass(frozen=True)
class Check:
    """One loaded check: its metadata and the pure function that judges an inventory."""

    meta: CheckMeta
    func: CheckFunc

    @property
    def id(self) -> str:
        return self.meta.id


class Requirement(BaseModel):
    """One control of a framework and the checks that evidence it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    title: str
    description: str
    checks: tuple[str, ...] = Field(min_length=1)


class Framework(BaseModel):
    """A compliance framework (SOC2, HIPAA, the architecture's own) as requirements over check ids."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    framework: str
    name: str
    version: str
    requirements: tuple[Requirement, ...] = Field(min_length=1)


def load_check(meta_path: Path, package: str = "compliance.checks") -> Check:
    """Load one check from its metadata file, refusing any id/file/function mismatch."""
    stem = meta_path.name[: -len(META_SUFFIX)]
    try:
        meta = CheckMeta.model_validate(json.loads(meta_path.read_text()))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise CatalogError(f"{meta_path}: invalid check metadata: {exc}") from None
    if meta.id != stem:
        raise CatalogError(f"{meta_path}: metadata id {meta.id!r} does not match the file name {stem!r}")
    if meta.service != meta_path.parent.name:
        raise CatalogError(f"{meta_path}: service {meta.service!r} is not its folder {meta_path.parent.name!r}")
    code = meta_path.with_name(f"{stem}.py")
    if not code.exists():
        raise CatalogError(f"{meta_path}: no module {code.name} beside it")
    module = importlib.import_module(f"{package}.{meta_path.parent.name}.{stem}")
    func = getattr(module, stem, None)
    if not callable(func):
        raise CatalogError(f"{code}: defines no function named {stem!r}")
    return Check(meta=meta, func=func)


def load_checks(root: Path = CHECKS_DIR, package: str = "compliance.checks") -> dict[str, Check]:
    checks: dict[str, Check] = {}
    for meta_path in sorted(root.glob(f"*/*{META_SUFFIX}")):
        check = load_check(meta_path, package)
        if check.id in checks:
            raise CatalogError(f"{meta_path}: check id {check.id!r} is defined twice")
        checks[check.id] = check
    modules = {p.stem for p in root.glob("*/*.py") if not p.stem.startswith("_")}
    orphans = sorted(modules - set(checks))
    if orphans:
        raise CatalogError(f"check modules without metadata: {', '.join(orphans)}")
    return checks


def load_frameworks(known: Iterable[str], root: Path = FRAMEWORKS_DIR) -> dict[str, Framework]:
    known = set(known)
    out: dict[str, Framework] = {}
    for path in sorted(root.glob("*.json")):
        try:
            fw = Framework.model_validate(json.loads(path.read_text()))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise CatalogError(f"{path}: invalid framework: {exc}") from None
        for req in fw.requirements:
            unknown = sorted(set(req.checks) - known)
            if unknown:
                raise CatalogError(f"{path}: requirement {req.id} names unknown check(s) {', '.join(unknown)}")
        if fw.framework in out:
            raise CatalogError(f"{path}: framework {fw.framework!r} is defined twice")
        out[fw.framework] = fw
    return out


@dataclass(frozen=True)
class Catalog:
    """All checks and all frameworks, cross-validated."""

    checks: dict[str, Check]
    frameworks: dict[str, Framework]

    def controls_of(self, check_id: str) -> list[str]:
        """``framework:requirement`` ids that a check evidences."""
        return [f"{fw.framework}:{r.id}" for fw in self.frameworks.values() for r in fw.requirements
                if check_id in r.checks]


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    checks = load_checks()
    return Catalog(checks=checks, frameworks=load_frameworks(checks))
