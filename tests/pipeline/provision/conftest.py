"""A provisioned fabric shared by the read-back tests, and small config helpers.

Read-back tests share one provisioning (two tenants) for as long as the
embedded account still holds it; tests that change the account use
``cloud``, which resets it, and the next read-back test provisions again.
"""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from comfyfab.cloud import Cloud
from comfyfab.config import FabricConfig
from pipeline.provision import FabricResources, provision


@dataclass
class Provisioned:
    cloud: Cloud
    cfg: FabricConfig
    res: FabricResources
    calls: dict[str, list[dict]]      # API parameters sent, by operation, for fields moto does not echo

    def still_there(self) -> bool:
        """True while the account holds exactly this provisioning (a reset or re-provision changes key ids)."""
        kms = self.cloud.client("kms")
        t = self.cfg.tenants[0].id
        try:
            return kms.describe_key(KeyId=self.cfg.key_alias(t))["KeyMetadata"]["KeyId"] == self.res.tenants[t].key_id
        except kms.exceptions.NotFoundException:
            return False


_shared: dict[str, Provisioned] = {}


@pytest.fixture
def fabric(embedded_aws, fabric_config) -> Provisioned:
    current = _shared.get("fabric")
    if current is not None and current.still_there():
        return current
    embedded_aws.reset()
    cloud = embedded_aws.cloud()
    cfg = fabric_config.first_tenants(2)
    calls: dict[str, list[dict]] = {}

    def capture(params, model, **_):
        calls.setdefault(model.name, []).append(dict(params))

    cloud.client("kms").meta.events.register("provide-client-params.kms.EnableKeyRotation", capture)
    cloud.client("sqs").meta.events.register("provide-client-params.sqs.SetQueueAttributes", capture)
    _shared["fabric"] = Provisioned(cloud, cfg, provision(cloud, cfg), calls)
    return _shared["fabric"]


def tags_of(pairs, key: str = "Key", value: str = "Value") -> dict[str, str]:
    return {t[key]: t[value] for t in pairs or ()}
