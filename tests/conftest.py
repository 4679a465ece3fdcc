"""Shared fixtures: the fabric config and a cloud backend.

``--backend`` picks where AWS calls go (default: the embedded moto server).
"""
from __future__ import annotations

import pytest

from comfyfab.cloud import EmbeddedAws
from comfyfab.config import load_config


def pytest_addoption(parser):
    parser.addoption("--backend", default="embedded", choices=["embedded", "localstack", "aws"],
                     help="AWS backend for integration tests")


@pytest.fixture(scope="session")
def fabric_config():
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
