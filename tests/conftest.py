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
from tests.support.workers import workers_server

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


# The topologies of docs/scaling.md that the SDK suite runs on (each SDK test once per
# topology; other tests on the embedded one): "embedded" (SQLite + Qdrant Edge, in this
# process), "sqlite-qdrant-local" (SQLite + the qdrant-client transport in local mode) and
# "postgres-2-workers" (`stagewise serve --workers 2` on a fresh PostgreSQL database and
# Redis, a child process). STAGEWISE_TEST_TOPOLOGIES narrows the list (comma-separated).
TOPOLOGIES = os.environ.get(
    "STAGEWISE_TEST_TOPOLOGIES", "embedded,sqlite-qdrant-local,postgres-2-workers"
).split(",")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    node = metafunc.definition
    if (
        "server" in metafunc.fixturenames
        and node.get_closest_marker("sdk") is not None
        and node.get_closest_marker("inprocess") is None
    ):
        topologies = TOPOLOGIES
        if node.get_closest_marker("store_only") is not None:
            # The vector transport never runs here: the two SQLite topologies are one case.
            topologies = [t for t in TOPOLOGIES if t != "sqlite-qdrant-local"] or TOPOLOGIES
        metafunc.parametrize("server", topologies, indirect=True, scope="session")


@pytest.fixture(scope="session")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """One server with the real MiniLM model per topology, shared by the SDK and API tests."""
    topology = getattr(request, "param", "embedded")
    data_dir = tmp_path_factory.mktemp(f"stagewise-{topology}")
    # file:// blobs are read from here (tests/sdk/test_bucket_objects.py: import_dir).
    imports = data_dir / "imports"
    imports.mkdir()
    if topology == "embedded":
        handle = start_server(data_dir, admin_key=ADMIN_KEY, blob_import_dir=imports)
    elif topology == "sqlite-qdrant-local":
        handle = start_server(
            data_dir,
            admin_key=ADMIN_KEY,
            vector_backend="qdrant",
            qdrant_url=":memory:",
            blob_import_dir=imports,
        )
    elif topology == "postgres-2-workers":
        with workers_server(data_dir, workers=2, STAGEWISE_BLOB_IMPORT_DIR=str(imports)) as process:
            yield process
        return
    else:
        raise AssertionError(f"unknown topology {topology!r}")
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
