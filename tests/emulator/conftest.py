"""Fixtures for the LocalStack tests; the emulators themselves come from the root conftest
(``localstack_emulators`` / ``localstack_backend``, started once per session)."""
from __future__ import annotations

import pytest

from comfyfab.cloud import BackendSpec, Cloud


def localstack_cloud(spec: BackendSpec) -> Cloud:
    """A Cloud on LocalStack (the factory signs with LocalStack's own fake secret)."""
    return Cloud(spec)


@pytest.fixture(scope="session")
def ls_cloud(localstack_backend) -> Cloud:
    return localstack_cloud(localstack_backend)
