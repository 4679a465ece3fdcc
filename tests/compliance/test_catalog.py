"""The control catalog: checks and metadata kept together, frameworks naming only known checks."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from compliance.catalog import CatalogError, load_catalog, load_checks, load_frameworks

CONTROLS = {
    "soc2": {"CC6.1", "CC6.6", "CC7.2"},
    "hipaa": {"164.312(a)(1)", "164.312(a)(2)(iv)", "164.312(b)", "164.312(c)(1)", "164.312(d)",
              "164.312(e)(1)", "164.312(e)(2)(ii)"},
    "comfyfab": {"PHI-EXCLUSION", "TENANT-ISOLATION", "QUEUE-DLQ-POLICY", "RETENTION"},
}


def test_catalog_has_every_control_of_the_brief():
    cat = load_catalog()
    assert {fw: {r.id for r in f.requirements} for fw, f in cat.frameworks.items()} == CONTROLS


def test_every_check_serves_a_control_and_has_full_metadata():
    cat = load_catalog()
    for cid, check in cat.checks.items():
        assert cat.controls_of(cid), f"{cid} evidences no control"
        assert check.meta.rationale and check.meta.remediation and check.meta.resources


def _write_check(root: Path, service: str, stem: str, meta_id: str, func: str) -> None:
    d = root / service
    d.mkdir(parents=True, exist_ok=True)
    (d / "__init__.py").write_text("")
    (d / f"{stem}.py").write_text(f"def {func}(inv, cfg):\n    return []\n")
    (d / f"{stem}.metadata.json").write_text(json.dumps({
        "id": meta_id, "title": "t", "service": service, "severity": "low", "resources": ["x:y"],
        "rationale": "because it matters", "remediation": "fix it like this"}))


@pytest.fixture
def pkg(tmp_path, monkeypatch):
    """An importable scratch package standing in for compliance.checks."""
    name = f"scratch_checks_{abs(hash(tmp_path)) % 10**8}"
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield root, name
    for mod in [m for m in sys.modules if m.startswith(name)]:
        del sys.modules[mod]


def test_loader_accepts_a_consistent_check(pkg):
    root, name = pkg
    _write_check(root, "svc", "svc_good", "svc_good", "svc_good")
    assert list(load_checks(root, name)) == ["svc_good"]


@pytest.mark.parametrize("stem,meta_id,func,why", [
    ("svc_a", "svc_b", "svc_a", "does not match the file name"),
    ("svc_a", "svc_a", "svc_other", "defines no function named"),
])
def test_loader_refuses_a_mismatch(pkg, stem, meta_id, func, why):
    root, name = pkg
    _write_check(root, "svc", stem, meta_id, func)
    with pytest.raises(CatalogError, match=why):
        load_checks(root, name)


def test_loader_refuses_a_module_without_metadata(pkg):
    root, name = pkg
    _write_check(root, "svc", "svc_good", "svc_good", "svc_good")
    (root / "svc" / "svc_orphan.py").write_text("def svc_orphan(inv, cfg):\n    return []\n")
    with pytest.raises(CatalogError, match="without metadata: svc_orphan"):
        load_checks(root, name)


def test_loader_refuses_metadata_in_the_wrong_service_folder(pkg):
    root, name = pkg
    _write_check(root, "svc", "svc_good", "svc_good", "svc_good")
    meta = root / "svc" / "svc_good.metadata.json"
    meta.write_text(meta.read_text().replace('"service": "svc"', '"service": "other"'))
    with pytest.raises(CatalogError, match="is not its folder"):
        load_checks(root, name)


def test_framework_naming_an_unknown_check_is_refused(tmp_path):
    (tmp_path / "fw.json").write_text(json.dumps({
        "framework": "fw", "name": "n", "version": "1",
        "requirements": [{"id": "R1", "title": "t", "description": "d", "checks": ["known", "no_such_check"]}]}))
    with pytest.raises(CatalogError, match="unknown check\\(s\\) no_such_check"):
        load_frameworks({"known"}, tmp_path)
    assert load_frameworks({"known", "no_such_check"}, tmp_path)["fw"].requirements[0].id == "R1"


def test_shipped_frameworks_name_only_shipped_checks():
    cat = load_catalog()
    named = {c for f in cat.frameworks.values() for r in f.requirements for c in r.checks}
    assert named <= set(cat.checks)
    assert set(cat.checks) <= named
