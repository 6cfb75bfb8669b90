"""Shared fixtures: a network guard, live servers on loopback, SDK clients."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import ServerHandle, start_server

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: Any) -> Any:
    host = address[0] if isinstance(address, tuple) else None
    if host is not None and self.family in (socket.AF_INET, socket.AF_INET6):
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None if host == "localhost" else ipaddress.ip_address("0.0.0.0")
        if ip is not None and not ip.is_loopback:
            raise RuntimeError(f"network access outside loopback is forbidden in tests: {address}")
    return _real_connect(self, address)


@pytest.fixture(autouse=True, scope="session")
def _network_guard() -> Iterator[None]:
    socket.socket.connect = _loopback_only  # type: ignore[method-assign]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]


ADMIN_KEY = "sk_test_admin_key_for_the_suite"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    """One server with the real MiniLM model, shared by the SDK and API tests."""
    data_dir = tmp_path_factory.mktemp("stagewise-data")
    handle = start_server(data_dir, admin_key=ADMIN_KEY)
    yield handle
    handle.stop()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Callable[..., ServerHandle]:
    """Servers of the test's own (restart tests); all stopped at teardown."""
    started: list[ServerHandle] = []

    def factory(data_dir: Path | None = None, **kwargs: Any) -> ServerHandle:
        handle = start_server(data_dir or tmp_path / "data", admin_key=ADMIN_KEY, **kwargs)
        started.append(handle)
        return handle

    yield factory  # type: ignore[misc]
    for handle in started:
        handle.stop()
