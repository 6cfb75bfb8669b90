"""A namespace with one bucket, driven through the official SDK (tests/sdk/test_bucket_*)."""

from __future__ import annotations

from typing import Any

import mixpeek
from mixpeek.models import BucketCreateRequest, CreateNamespaceRequest, CreateObjectRequest

from tests.sdk.conftest import ClientFactory

SCHEMA = {
    "properties": {
        "title": {"type": "string", "required": True},
        "year": {"type": "integer"},
        "score": {"type": "number"},
        "published": {"type": "date"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "body": {"type": "text"},
        "cover": {"type": "image"},
    }
}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


class World:
    def __init__(self, sdk: ClientFactory, ns: str, **bucket: Any) -> None:
        mixpeek.NamespacesApi(sdk()).create_namespace(
            CreateNamespaceRequest.from_dict({"namespace_name": ns})
        )
        self.client = sdk(namespace=ns)
        self.buckets = mixpeek.BucketsApi(self.client)
        self.objects = mixpeek.BucketObjectsApi(self.client)
        body = {"bucket_name": "items", "bucket_schema": SCHEMA, **bucket}
        self.bucket = self.buckets.create_bucket(BucketCreateRequest.from_dict(body))
        self.bid: str = self.bucket.bucket_id

    def create(self, body: dict[str, Any], **query: Any) -> Any:
        return self.objects.create_object_buckets(
            self.bid, CreateObjectRequest.from_dict(body), **query
        )

    def counts(self) -> tuple[int, int]:
        b = self.buckets.get_bucket(self.bid)
        return b.object_count, b.total_size_bytes


def error_text(exc: Exception) -> str:
    """The error body the SDK kept (message, code, field)."""
    return str(getattr(exc, "body", "") or "")
