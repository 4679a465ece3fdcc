"""A provisioned fabric for the compliance tests, shared by a module.

One tenant keeps a scan cheap (each break test scans the whole account);
cross-tenant properties are judged per tenant, so one is enough to make
each check pass and fail.
Buckets get the ``full`` policy mode: the scanner makes no object requests,
so moto's over-applied conditional denies do not get in the way, and the
upload-deny check can really pass and really fail here.
"""
from __future__ import annotations

import os
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
def fabric_backend(backend) -> str:
    """The backend this module's fabric runs on (``--backends``)."""
    return backend


@pytest.fixture(scope="module")
def fresh_fabric(request, fabric_backend, one_tenant_config) -> Fabric:
    """A freshly provisioned fabric (nothing added)."""
    from pipeline.provision import provision

    cloud = request.getfixturevalue("backend_cloud")
    cfg = one_tenant_config
    if fabric_backend != "embedded":
        # A fabric name of its own keeps this run apart from anything else on the shared emulator.
        cfg = one_tenant_config.with_overrides({"name": f"cfscan{os.getpid() % 100000}"})
    res = provision(cloud, cfg, bucket_policy_mode="full")
    return Fabric(cloud, cfg, res)
