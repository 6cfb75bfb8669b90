"""BYO upsert: up to 1,000 documents with their own vectors, optionally idempotent."""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any

import orjson
import sqlalchemy.exc

from stagewise.domain.records import IdempotencyRecord, NamespaceRecord
from stagewise.errors import Conflict
from stagewise.services.collections import direct_upsert_collection, get_collection
from stagewise.services.context import Stores
from stagewise.services.documents import byo_document, write_documents
from stagewise.services.execute import write_token


def _request_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def upsert_documents(
    stores: Stores, *, ns: NamespaceRecord, body: dict[str, Any]
) -> dict[str, Any]:
    key = (body.get("options") or {}).get("idempotency_key")
    # Hashing 1,000 vectors costs ~20 ms, so only a request that can be replayed pays it.
    request_hash = _request_hash(body) if key else ""
    if key:
        previous = stores.metadata.get_idempotency(ns.namespace_id, key)
        if previous is not None:
            if previous.request_hash != request_hash:
                raise Conflict(
                    f"Idempotency key '{key}' was already used with a different request body",
                    code="idempotency_key_reused",
                )
            return previous.response
    col = (
        get_collection(stores, ns=ns, identifier=body["collection_id"])
        if body.get("collection_id")
        else direct_upsert_collection(stores, ns=ns)
    )
    # Validate every document before writing any: a bad one rejects the whole batch.
    docs = [byo_document(col, stores, raw) for raw in body["documents"]]
    stored = write_documents(stores, col, docs)
    wants_token = bool((body.get("options") or {}).get("write_token"))
    response: dict[str, Any] = {
        "inserted": len(stored),
        "document_ids": [d.document_id for d in stored],
        "collection_id": col.collection_id,
        "unsearchable_document_ids": [],
        "warnings": [],
        # Committed and applied to this worker's index before this answer; other workers
        # apply it before any strong (default) read, so it is visible to every retriever
        # read from now on. Eventual reads may lag by the follower lag (/v1/health/deep).
        "consistency": {
            "retriever_visible": "immediate",
            "write_token_available": wants_token,
        },
    }
    if wants_token:
        response["write_token"] = write_token(
            stores, ns.namespace_id, col.collection_id, max(d.seq for d in stored)
        )
    if key:
        # A concurrent retry may store it first; the writes are idempotent upserts anyway.
        with contextlib.suppress(sqlalchemy.exc.IntegrityError):
            stores.metadata.put_idempotency(
                IdempotencyRecord(
                    namespace_id=ns.namespace_id,
                    key=key,
                    request_hash=request_hash,
                    response=response,
                )
            )
    return response
