"""The SearchIndex conformance suite on the Qdrant transport, over qdrant-client's local mode
(an in-process engine: `QdrantClient(":memory:")`), one client per test."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Headers
from pydantic import ValidationError
from qdrant_client import QdrantClient
from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
from qdrant_client.http.exceptions import UnexpectedResponse

from stagewise.api.errors import install_error_handlers
from stagewise.config import Settings
from stagewise.errors import InvalidRequest, Unavailable
from stagewise.storage.index.edge import EdgeSearchIndex
from stagewise.storage.index.factory import make_search_index
from stagewise.storage.index.remote import QdrantSearchIndex
from stagewise.storage.index.remote_errors import ErrorMapper
from stagewise.storage.protocols import SearchRequest
from stagewise.testing.search_index import SearchIndexConformance
from stagewise.testing.search_index_data import make_collection, point

pytestmark = pytest.mark.unit


class TestQdrantLocalSearchIndex(SearchIndexConformance):
    indexes_change_plans = False  # local mode searches exhaustively and ignores indexes

    @pytest.fixture
    def index(self) -> Iterator[QdrantSearchIndex]:
        ix = QdrantSearchIndex(QdrantClient(":memory:"))
        yield ix
        ix.close()


# ---- the factory, the settings, and an unreachable server


def test_factory_defaults_to_the_embedded_shards(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("STAGEWISE_VECTOR_BACKEND", "STAGEWISE_QDRANT_URL", "STAGEWISE_QDRANT_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    index, maintenance = make_search_index(Settings(data_dir=tmp_path))
    try:
        assert isinstance(index, EdgeSearchIndex)
        assert maintenance is index
    finally:
        index.close()


def test_factory_reads_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STAGEWISE_VECTOR_BACKEND", "qdrant")
    monkeypatch.setenv("STAGEWISE_QDRANT_URL", ":memory:")
    monkeypatch.setenv("STAGEWISE_QDRANT_API_KEY", "k" * 20)
    settings = Settings(data_dir=tmp_path)
    assert (settings.vector_backend, settings.qdrant_url) == ("qdrant", ":memory:")
    assert settings.qdrant_api_key == "k" * 20
    index, maintenance = make_search_index(settings)
    try:
        assert isinstance(index, QdrantSearchIndex) and index.local
        assert maintenance is None
        col = make_collection()
        index.ensure_collection(col)
        assert index.count(col.collection_id) == 0
    finally:
        index.close()
    monkeypatch.setenv("STAGEWISE_VECTOR_BACKEND", "faiss")
    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path)


def test_factory_refuses_a_missing_url(tmp_path: Path) -> None:
    for url in ("", "  ", "local:"):
        with pytest.raises(InvalidRequest) as err:
            make_search_index(Settings(data_dir=tmp_path, vector_backend="qdrant", qdrant_url=url))
        assert "STAGEWISE_QDRANT_URL" in err.value.message


def test_local_path_mode_persists_points_and_indexes(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, vector_backend="qdrant", qdrant_url=f"local:{tmp_path / 'q'}"
    )
    col = make_collection()
    cid = col.collection_id
    index, _ = make_search_index(settings)
    index.ensure_collection(col)
    index.upsert(cid, [point("a", 7, {"metadata": {"k": "v"}}, text="persisted kittens")])
    assert index.ensure_payload_index(cid, "metadata.k", "keyword")
    index.close()
    again, _ = make_search_index(settings)
    try:
        assert again.max_seq(cid) == 7
        assert again.indexed_fields(cid)["metadata.k"] == "keyword"
        assert not again.ensure_payload_index(cid, "metadata.k", "keyword")
        (answer,) = again.search(cid, [SearchRequest(limit=1, text="kitten")])
        assert [h.document_id for h in answer.hits] == ["a"]
    finally:
        again.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_server_is_a_503_with_retry_after() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    client = QdrantClient(url=url, timeout=2, check_compatibility=False)
    index = QdrantSearchIndex(client)
    try:
        calls = [
            lambda: index.count("col_x"),
            lambda: index.ensure_collection(make_collection()),
            lambda: index.search("col_x", [SearchRequest(limit=1, text="x")]),
            lambda: index.upsert("col_x", [point("a", 1, {})]),
        ]
        for call in calls:
            with pytest.raises(Unavailable) as err:
                call()
            assert url in err.value.message
            assert err.value.status == 503
            assert err.value.details["qdrant_url"] == url
            assert err.value.details["retry_after_seconds"] >= 1
        raised = err.value
    finally:
        index.close()

    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        raise raised

    response = TestClient(app).get("/boom")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    body = response.json()
    assert body["error"]["code"] == "vector_index_unavailable"
    assert body["error"]["details"]["qdrant_url"] == url


def test_error_mapping_of_server_answers() -> None:
    errors = ErrorMapper("https://user:secret@qdrant.example:6333/base?api-key=x")
    assert errors.url == "https://qdrant.example:6333/base"
    headers = Headers({})
    with pytest.raises(KeyError), errors.calls("col_a"):
        raise UnexpectedResponse(404, "Not Found", b"{}", headers)
    with pytest.raises(Unavailable), errors.calls("col_a"):
        raise UnexpectedResponse(502, "Bad Gateway", b"", headers)
    with pytest.raises(Unavailable) as err, errors.calls("col_a"):
        raise ResourceExhaustedResponse("slow down", 7)
    assert err.value.details["retry_after_seconds"] == 7
    with pytest.raises(UnexpectedResponse), errors.calls("col_a"):  # a bug, not an outage
        raise UnexpectedResponse(400, "Bad Request", b"{}", headers)
