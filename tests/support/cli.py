"""Running the `stagewise` client commands in process against a test server, and the
namespaces they work on."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from typer.testing import CliRunner, Result

from stagewise.cli import app
from tests.support.server import ServerHandle


def run_cli(server: ServerHandle, *args: str, namespace: str | None = None, **env: str) -> Result:
    """`stagewise ARGS` with STAGEWISE_URL and STAGEWISE_API_KEY (and STAGEWISE_NAMESPACE)."""
    env = {"STAGEWISE_URL": server.base_url, "STAGEWISE_API_KEY": server.admin_key, **env}
    if namespace:
        env["STAGEWISE_NAMESPACE"] = namespace
    return CliRunner().invoke(app, list(args), env=env, terminal_width=200)


def new_namespace(server: ServerHandle, prefix: str, **body: Any) -> tuple[str, httpx.Client]:
    """A fresh namespace and a client scoped to it (the caller closes it)."""
    ns = f"{prefix}-{uuid.uuid4().hex[:8]}"
    with server.client(server.admin_key) as admin:
        admin.post("/v1/namespaces", json={"namespace_name": ns, **body}).raise_for_status()
    return ns, server.client(server.admin_key, namespace=ns)


def text_collection(http: httpx.Client, name: str) -> None:
    """A collection whose documents' `text` the server embeds (MiniLM)."""
    body = {
        "collection_name": name,
        "source": {"type": "direct_upsert"},
        "feature_extractor": {"feature_extractor_name": "text_extractor", "version": "v1"},
    }
    http.post("/v1/collections", json=body).raise_for_status()
