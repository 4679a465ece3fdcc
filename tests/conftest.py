"""Shared fixtures: the fabric config and the AWS backends.

Integration suites ask for ``backend`` (and ``backend_cloud`` /
``backend_config``): they run once per backend named by ``--backends``
(comma-separated; ``embedded`` by default, ``embedded,localstack`` in
``make test``).  The LocalStack emulators start once per session; when they
cannot start, every test that needs them fails with the reason -- nothing is
skipped silently.
"""
from __future__ import annotations

import itertools

import pytest

from comfyfab.cloud import BACKENDS, Cloud, EmbeddedAws
from comfyfab.config import FabricConfig, load_config

_names = itertools.count(1)


def pytest_addoption(parser):
    parser.addoption("--backends", default="embedded",
                     help="comma-separated backends for the integration suites: embedded, localstack")
    parser.addoption("--backend", default=None, choices=BACKENDS,
                     help="shorthand for --backends with one backend")


def selected_backends(config) -> list[str]:
    one = config.getoption("--backend")
    kinds = [one] if one else [k.strip() for k in config.getoption("--backends").split(",") if k.strip()]
    unknown = [k for k in kinds if k not in BACKENDS]
    if unknown:
        raise pytest.UsageError(f"unknown backend(s) {unknown}; choose from {', '.join(BACKENDS)}")
    return kinds


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", selected_backends(metafunc.config), indirect=True, scope="module")


@pytest.fixture(scope="module")
def backend(request) -> str:
    """The backend kind this module's integration tests run on."""
    if request.param == "aws":
        pytest.skip("the integration suites create and break resources; scan a real account with "
                    "`comfyfab scan --backend aws` instead")
    return request.param


@pytest.fixture(scope="session")
def fabric_config() -> FabricConfig:
    return load_config()


@pytest.fixture(scope="session")
def embedded_aws():
    with EmbeddedAws() as aws:
        yield aws


@pytest.fixture
def cloud(embedded_aws):
    """A fresh, empty embedded AWS for each test."""
    embedded_aws.reset()
    return embedded_aws.cloud()


@pytest.fixture(scope="session")
def localstack_emulators():
    """LocalStack + DynamoDB Local, installed on first use under .comfyfab/emulators, started once."""
    from comfyfab.emulator import DEFAULT_STATE_DIR, EmulatorError, LocalEmulators

    emulators = LocalEmulators(DEFAULT_STATE_DIR, gateway_port=0, dynamodb_port=0, start_timeout_s=180)
    already = emulators.status().running
    try:
        emulators.up()
    except EmulatorError as exc:
        pytest.fail(f"the LocalStack backend cannot start: {exc}", pytrace=False)
    yield emulators
    if not already:  # leave emulators someone started by hand running
        emulators.down()


@pytest.fixture(scope="session")
def localstack_backend(localstack_emulators):
    spec = localstack_emulators.status().spec
    assert spec is not None, "emulators report running but give no endpoints"
    return spec


@pytest.fixture(scope="module")
def backend_cloud(request, backend) -> Cloud:
    """A Cloud on this module's backend: an emptied embedded server, or the shared LocalStack."""
    if backend == "embedded":
        aws = request.getfixturevalue("embedded_aws")
        aws.reset()
        return aws.cloud()
    return Cloud(request.getfixturevalue("localstack_backend"))


@pytest.fixture(scope="module")
def backend_config(backend, fabric_config) -> FabricConfig:
    """The fabric config; on a shared emulator, under a fabric name of this module's own."""
    if backend == "embedded":
        return fabric_config
    import os

    return fabric_config.with_overrides({"name": f"cf{os.getpid() % 100000}m{next(_names)}"})
