"""Fixtures for the LocalStack backend: the emulators, started once per session.

``localstack_backend`` starts LocalStack and DynamoDB Local (installing them on
first use under ``.comfyfab/emulators``) or reuses ones already running from
that folder.  When they cannot start, every test that needs them fails with
the reason: nothing is skipped silently.
"""
from __future__ import annotations

import pytest

import comfyfab.cloud
from comfyfab.cloud import BackendSpec, Cloud
from comfyfab.emulator import DEFAULT_STATE_DIR, LOCALSTACK_PRESIGN_SECRET, EmulatorError, LocalEmulators


def pytest_configure(config):
    # Also to be listed in pyproject's markers; registering twice is harmless.
    config.addinivalue_line("markers", "localstack: needs LocalStack + DynamoDB Local (started by a session fixture)")


@pytest.fixture(scope="session")
def localstack_emulators():
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
def localstack_backend(localstack_emulators) -> BackendSpec:
    spec = localstack_emulators.status().spec
    assert spec is not None
    return spec


def localstack_cloud(spec: BackendSpec) -> Cloud:
    """A Cloud whose fake secret is the one LocalStack checks presigned URLs with.

    Cloud signs with ``comfyfab.cloud.FAKE_SECRET_KEY`` ("testing"); LocalStack
    validates signatures of keys it did not issue with the secret "test", so a
    presigned URL made with "testing" is refused.  Until ``Cloud`` picks the
    secret per backend, the constant is swapped while this Cloud is built.
    """
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(comfyfab.cloud, "FAKE_SECRET_KEY", LOCALSTACK_PRESIGN_SECRET)
        return Cloud(spec)


@pytest.fixture(scope="session")
def ls_cloud(localstack_backend) -> Cloud:
    return localstack_cloud(localstack_backend)
