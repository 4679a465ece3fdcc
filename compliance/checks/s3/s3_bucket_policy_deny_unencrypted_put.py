from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, unverified, verdict
from ...inventory import Inventory
from ._policy import denies_unencrypted_put, find

# Provisioning on the embedded backend leaves object-level denies out of bucket policies, because moto
# applies a conditional Deny to every object request (see pipeline/provision/s3.py); it says so in this tag.
POLICY_MODE_TAG = "comfyfab:bucket-policy"


def s3_bucket_policy_deny_unencrypted_put(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """Tenant output buckets refuse uploads that do not ask for SSE-KMS."""
    out = []
    for b in inv.buckets:
        if not b.exists or b.tenant is None:
            continue
        sids = find(b.policy, denies_unencrypted_put)
        mode = b.tags.get(POLICY_MODE_TAG)
        if not sids and mode == "embedded" and inv.backend == "embedded":
            out.append(unverified(b.name, f"bucket {b.name} was provisioned in the emulator's 'embedded' policy "
                                          "mode without object-level denies; prove this on localstack or aws",
                                  policy_mode=mode, matching_statements=sids))
            continue
        out.append(verdict(bool(sids), b.name, f"bucket {b.name} denies PutObject without SSE-KMS",
                           f"bucket {b.name} has no Deny on PutObject without x-amz-server-side-encryption=aws:kms",
                           has_policy=b.policy is not None, matching_statements=sids, policy_mode=mode))
    return out
