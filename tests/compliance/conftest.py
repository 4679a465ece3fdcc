"""A provisioned fabric for the compliance tests, shared by a module.

One tenant keeps a scan cheap (each break test scans the whole account);
cross-tenant properties are judged per tenant, so one is enough to make
each check pass and fail.
Buckets get the ``full`` policy mode: the scanner makes no object requests,
so moto's over-applied conditional denies do not get in the way, and the
upload-deny check can really pass and really fail here.
"""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from comfyfab.cloud import Cloud
from comfyfab.config import FabricConfig


@dataclass
class Fabric:
    """A provisioned fabric under test: the cloud it lives in, its config and what provisioning returned."""

    cloud: Cloud
    cfg: FabricConfig
    res: object

    def tenant(self, i: int = 0):
        return self.res.tenants[self.cfg.tenants[i].id]


@pytest.fixture(scope="module")
def one_tenant_config(fabric_config: FabricConfig) -> FabricConfig:
    return fabric_config.with_overrides({"tenants": [fabric_config.tenants[0].model_dump()]})


@pytest.fixture(scope="module")
def fresh_fabric(embedded_aws, one_tenant_config) -> Fabric:
    """A freshly provisioned fabric (nothing added)."""
    provision = pytest.importorskip("pipeline.provision").provision
    embedded_aws.reset()
    cloud = embedded_aws.cloud()
    res = provision(cloud, one_tenant_config, bucket_policy_mode="full")
    return Fabric(cloud, one_tenant_config, res)
