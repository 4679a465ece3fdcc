from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, passed, unverified, verdict
from ...inventory import Inventory


def iam_no_user_access_keys(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """No IAM user, and not the root user, holds an active static access key; people come in through SSO."""
    root = f"account {inv.account_id} root"
    if inv.root_access_keys is None:
        out = [unverified(root, "the backend does not report AccountAccessKeysPresent")]
    else:
        out = [verdict(inv.root_access_keys == 0, root, "the root user has no access keys",
                       f"the root user holds {inv.root_access_keys} access key(s)",
                       root_access_keys=inv.root_access_keys)]
    if not inv.users:
        out.append(passed(f"account {inv.account_id} users", "the account has no IAM users", users=0))
    out += [verdict(not u.active_keys, u.name, f"user {u.name} has no active access key",
                    f"user {u.name} holds {len(u.active_keys)} active access key(s)",
                    active_keys=len(u.active_keys)) for u in inv.users]
    return out
