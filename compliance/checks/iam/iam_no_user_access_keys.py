from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, passed, verdict
from ...inventory import Inventory


def iam_no_user_access_keys(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """No IAM user holds an active static access key; people come in through SSO roles."""
    if not inv.users:
        return [passed(f"account {inv.account_id}", "the account has no IAM users", users=0)]
    return [verdict(not u.active_keys, u.name, f"user {u.name} has no active access key",
                    f"user {u.name} holds {len(u.active_keys)} active access key(s)",
                    active_keys=len(u.active_keys)) for u in inv.users]
