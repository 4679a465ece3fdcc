"""Reading S3 bucket policies: which Deny statements a policy carries."""

from __future__ import annotations

from typing import Any, Iterable, Mapping


def _list(v: Any) -> list:
    if v is None:
        return []
    return [v] if isinstance(v, (str, bool)) else list(v)


def statements(policy: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    if not policy:
        return []
    return _list(policy.get("Statement")) if not isinstance(policy.get("Statement"), dict) else [policy["Statement"]]


def _everyone(stmt: Mapping[str, Any]) -> bool:
    p = stmt.get("Principal")
    return p == "*" or (isinstance(p, Mapping) and "*" in _list(p.get("AWS")))


def _actions(stmt: Mapping[str, Any]) -> set[str]:
    return {a.lower() for a in _list(stmt.get("Action"))}


def _cond(stmt: Mapping[str, Any], op: str, key: str) -> list[str]:
    block = stmt.get("Condition", {}).get(op, {})
    for k, v in block.items():
        if k.lower() == key.lower():
            return [str(x).lower() for x in _list(v)]
    return []


def _covers(stmt: Mapping[str, Any], actions: Iterable[str]) -> bool:
    have = _actions(stmt)
    return bool({"*", "s3:*"} & have) or any(a in have for a in actions)


def denies_insecure_transport(stmt: Mapping[str, Any]) -> bool:
    """Deny to everyone, for every S3 action, when aws:SecureTransport is false."""
    return (stmt.get("Effect") == "Deny" and _everyone(stmt) and bool({"*", "s3:*"} & _actions(stmt))
            and "false" in _cond(stmt, "Bool", "aws:SecureTransport"))


def denies_unencrypted_put(stmt: Mapping[str, Any]) -> bool:
    """Deny PutObject without SSE-KMS (a StringNotEquals on the SSE header, or its absence via Null)."""
    if stmt.get("Effect") != "Deny" or not _everyone(stmt) or not _covers(stmt, ["s3:putobject"]):
        return False
    header = "s3:x-amz-server-side-encryption"
    return "aws:kms" in _cond(stmt, "StringNotEquals", header) or "true" in _cond(stmt, "Null", header)


def find(policy: Mapping[str, Any] | None, pred) -> list[str]:
    """Sids (or positions) of the statements matching ``pred``: evidence for the report."""
    return [str(s.get("Sid", f"#{i}")) for i, s in enumerate(statements(policy)) if pred(s)]
