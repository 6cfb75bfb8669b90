"""The official mixpeek SDK pointed at our loopback server."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import mixpeek
import pytest

from tests.support.server import ServerHandle
from tests.support.taxonomy_world import TaxonomyWorld, build_world

ClientFactory = Callable[..., mixpeek.ApiClient]


@pytest.fixture
def sdk(server: ServerHandle) -> Iterator[ClientFactory]:
    clients: list[mixpeek.ApiClient] = []

    def factory(key: str | None = None, namespace: str | None = None) -> mixpeek.ApiClient:
        api_key = {"NamespaceHeader": namespace} if namespace else None
        config = mixpeek.Configuration(
            host=server.base_url, access_token=key or server.admin_key, api_key=api_key
        )
        client = mixpeek.ApiClient(config)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.rest_client.pool_manager.clear()


@pytest.fixture
def ns_name() -> str:
    return f"ns-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def taxonomy_world(server: ServerHandle) -> TaxonomyWorld:
    """A labelled topics collection, held-out articles, a matcher retriever and a flat
    taxonomy (tests/support/taxonomy_world.py), once per module."""
    return build_world(server.base_url, server.admin_key)
