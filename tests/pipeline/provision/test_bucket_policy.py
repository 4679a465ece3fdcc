"""The output-bucket policy: its canonical AWS form, the embedded reduction, and why the reduction exists."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.provision import ProvisioningError, attached_policy, canonical_bucket_policy, default_policy_mode


def _denied(policy: dict, action: str, resource: str, ctx: dict[str, str]) -> bool:
    """AWS semantics for the operators the policy uses (Bool, StringNotEquals, StringNotEqualsIfExists)."""
    for s in policy["Statement"]:
        actions = [s["Action"]] if isinstance(s["Action"], str) else s["Action"]
        resources = [s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"]
        if s["Effect"] != "Deny" or not any(a in ("s3:*", action) for a in actions):
            continue
        if not any(r == resource or (r.endswith("/*") and resource.startswith(r[:-1])) for r in resources):
            continue
        ok = True
        for op, kv in s["Condition"].items():
            for k, v in kv.items():
                if op == "Bool":
                    ok &= ctx.get(k) == v
                elif op == "StringNotEquals":
                    ok &= ctx.get(k) != v
                elif op == "StringNotEqualsIfExists":
                    ok &= k in ctx and ctx[k] != v
                else:
                    raise AssertionError(f"operator {op} not modelled")
        if ok:
            return True
    return False


def test_canonical_policy_denies_insecure_unencrypted_and_foreign_key_uploads():
    key = "arn:aws:kms:us-east-1:123456789012:key/k1"
    pol = canonical_bucket_policy("aws", "b-outputs", key)
    obj = "arn:aws:s3:::b-outputs/out/1.png"
    good = {"aws:SecureTransport": "true", "s3:x-amz-server-side-encryption": "aws:kms",
            "s3:x-amz-server-side-encryption-aws-kms-key-id": key}
    assert not _denied(pol, "s3:PutObject", obj, good)
    assert not _denied(pol, "s3:GetObject", obj, {"aws:SecureTransport": "true"})
    assert _denied(pol, "s3:PutObject", obj, {**good, "aws:SecureTransport": "false"})
    assert _denied(pol, "s3:GetObject", obj, {"aws:SecureTransport": "false"})
    assert _denied(pol, "s3:ListBucket", "arn:aws:s3:::b-outputs", {"aws:SecureTransport": "false"})
    assert _denied(pol, "s3:PutObject", obj, {"aws:SecureTransport": "true"})                       # no SSE header
    assert _denied(pol, "s3:PutObject", obj, {**good, "s3:x-amz-server-side-encryption": "AES256"})
    assert _denied(pol, "s3:PutObject", obj, {**good, "s3:x-amz-server-side-encryption-aws-kms-key-id":
                                              "arn:aws:kms:us-east-1:123456789012:key/other"})
    no_key_header = {k: v for k, v in good.items() if not k.endswith("key-id")}   # bucket default = tenant key
    assert not _denied(pol, "s3:PutObject", obj, no_key_header)


bucket_names = st.from_regex(r"[a-z][a-z0-9-]{2,40}[a-z0-9]", fullmatch=True)


@given(bucket=bucket_names, key_id=st.uuids())
def test_embedded_reduction_keeps_only_bucket_level_parts_of_canonical_statements(bucket, key_id):
    canonical = canonical_bucket_policy("aws", bucket, f"arn:aws:kms:us-east-1:123456789012:key/{key_id}")
    assert attached_policy(canonical, "full") == canonical
    reduced = attached_policy(canonical, "embedded")
    by_sid = {s["Sid"]: s for s in canonical["Statement"]}
    assert [s["Sid"] for s in reduced["Statement"]] == ["DenyInsecureTransport"]
    for s in reduced["Statement"]:
        assert s["Resource"] == [f"arn:aws:s3:::{bucket}"]
        assert {k: v for k, v in s.items() if k != "Resource"} == {
            k: v for k, v in by_sid[s["Sid"]].items() if k != "Resource"}


def test_unknown_mode_is_refused_and_defaults_follow_the_backend():
    with pytest.raises(ProvisioningError, match="unknown bucket policy mode"):
        attached_policy(canonical_bucket_policy("aws", "b-outputs", "k"), "lenient")  # type: ignore[arg-type]
    assert default_policy_mode("embedded") == "embedded"
    assert default_policy_mode("localstack") == default_policy_mode("aws") == "full"
