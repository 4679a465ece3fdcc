"""A provisioned fabric per test module, and small config helpers.

Read-back tests share one provisioning per module (module scope on the
session's embedded AWS); tests that change the account use ``cloud``.
"""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from comfyfab.cloud import Cloud
from comfyfab.config import FabricConfig
from pipeline.provision import FabricResources, provision


def with_tenants(cfg: FabricConfig, n: int) -> FabricConfig:
    """The config with only its first ``n`` tenants."""
    data = cfg.model_dump(mode="json")
    data["tenants"] = data["tenants"][:n]
    return FabricConfig.model_validate(data)


@dataclass
class Provisioned:
    cloud: Cloud
    cfg: FabricConfig
    res: FabricResources
    calls: dict[str, list[dict]]      # API parameters sent, by operation, for fields moto does not echo


@pytest.fixture(scope="module")
def fabric(embedded_aws, fabric_config) -> Provisioned:
    embedded_aws.reset()
    cloud = embedded_aws.cloud()
    cfg = with_tenants(fabric_config, 2)
    calls: dict[str, list[dict]] = {}

    def capture(params, model, **_):
        calls.setdefault(model.name, []).append(dict(params))

    cloud.client("kms").meta.events.register("provide-client-params.kms.EnableKeyRotation", capture)
    cloud.client("sqs").meta.events.register("provide-client-params.sqs.SetQueueAttributes", capture)
    res = provision(cloud, cfg)
    return Provisioned(cloud, cfg, res, calls)


def tags_of(pairs, key: str = "Key", value: str = "Value") -> dict[str, str]:
    return {t[key]: t[value] for t in pairs or ()}
