"""/docs (Swagger UI) and /redoc render from the server's own files: every request the page
makes goes to the server's origin, and anything off-origin is aborted (conftest), so a CDN
load would break the page here. Also the routes' plain HTTP behaviour."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.server import ServerHandle
from tests.ui.conftest import Tab

OPERATIONS = ("get", "put", "post", "delete", "patch", "head", "options")


def _operations(doc: dict[str, Any]) -> int:
    return sum(1 for item in doc["paths"].values() for method in item if method in OPERATIONS)


@pytest.mark.browser
def test_swagger_ui_and_redoc_render_from_the_servers_own_assets(
    tab: Tab, server: ServerHandle
) -> None:
    page = tab.page
    doc = server.client().get("/openapi.json").json()

    page.goto(f"{server.base_url}/docs")
    blocks = page.locator(".swagger-ui .opblock")
    expect(blocks.first).to_be_visible()
    expect(blocks).to_have_count(_operations(doc))  # one block per operation: it all rendered
    expect(page.locator(".swagger-ui .info .title")).to_contain_text(doc["info"]["title"])

    page.goto(f"{server.base_url}/redoc")
    expect(page.locator(".menu-content")).to_be_visible(timeout=30_000)
    expect(page.locator("h1").first).to_contain_text(doc["info"]["title"])
    expect(page.locator(".menu-content").get_by_text("retrievers", exact=True)).to_be_visible()

    assert tab.off_origin() == []
    asked = {r.removeprefix(server.base_url) for r in tab.requests}
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        assert f"/ui/vendor/{asset}" in asked, asked


@pytest.mark.api
def test_the_pages_are_local_and_outside_the_schema(server: ServerHandle) -> None:
    http = server.client()
    for path in ("/", "/ui"):
        resp = http.get(path, follow_redirects=False)
        assert resp.status_code == 307 and resp.headers["location"] == "/ui/", path
    page = http.get("/ui/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]

    for path in ("/docs", "/redoc", "/ui/"):
        html = http.get(path).text
        urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
        assert urls, path
        # Only this server's paths (relative or rooted); no other host, no protocol-relative URL.
        assert all(not re.match(r"^(?:[a-z]+:)?//", u) for u in urls), (path, urls)
        assert "cdn" not in html.lower(), path
    bundle = http.get("/ui/vendor/redoc.standalone.js")
    assert bundle.status_code == 200 and b"cdn.redoc.ly" not in bundle.content
    again = http.get(
        "/ui/vendor/redoc.standalone.js", headers={"If-None-Match": bundle.headers["etag"]}
    )
    assert again.status_code == 304

    paths = set(http.get("/openapi.json").json()["paths"])
    assert not {"/", "/ui", "/ui/", "/docs", "/redoc"} & paths
    assert not any(p.startswith("/ui/") for p in paths)

    # An unknown asset and an unknown route keep the one error shape.
    for path in ("/ui/static/no-such-file.js", "/no-such-route"):
        resp = http.get(path)
        assert resp.status_code == 404, path
        body = resp.json()
        assert body["success"] is False and body["status"] == 404
        assert set(body["error"]) == {"message", "type", "code", "details"}
