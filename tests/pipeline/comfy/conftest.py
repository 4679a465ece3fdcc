"""Fixtures for the ComfyUI stand-in: servers on loopback ports, clients.

One torch server and one noop server per test session (the tiny model loads
once); tests that need their own hooks start their own server.
"""
from __future__ import annotations

import pytest

from pipeline.comfy.client import ComfyClient
from pipeline.comfy.nodes import object_info
from pipeline.comfy.archs import checkpoint_names
from pipeline.comfy.engines import TorchOptions
from pipeline.comfy.server import ComfyServer


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """These models are tiny: one intra-op thread is fastest, and on a shared
    2-core machine two threads spin against other processes."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def catalog():
    """The stand-in's /object_info document (built-in checkpoints only)."""
    return object_info(checkpoint_names(None))


@pytest.fixture(scope="session")
def torch_server(tmp_path_factory):
    with ComfyServer(engine="torch", output_dir=tmp_path_factory.mktemp("torch-out"),
                     options=TorchOptions(cpu_threads=1)) as server:
        yield server


@pytest.fixture(scope="session")
def noop_server(tmp_path_factory):
    with ComfyServer(engine="noop", output_dir=tmp_path_factory.mktemp("noop-out")) as server:
        yield server


@pytest.fixture
def torch_client(torch_server):
    with ComfyClient(torch_server.url, timeout=60) as client:
        yield client


@pytest.fixture
def noop_client(noop_server):
    with ComfyClient(noop_server.url, timeout=30) as client:
        yield client
