"""The execution explorer at /ui and the API docs at /docs and /redoc, from packaged files
only: no page served here loads anything from another origin (docs/explorer.md)."""

from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from stagewise import __version__
from stagewise.ui import STATIC_DIR

# Swagger UI, ReDoc and their favicon as the pinned fastapi-offline wheel ships them.
VENDOR_DIR = Path(fastapi_offline.__file__).parent / "static"

# ReDoc 2 always draws Redocly's logo from Redocly's CDN in its sidebar; the bundle is served
# with that one URL swapped for an empty inline image, so the page asks no other host.
_REDOC_LOGO = b'"https://cdn.redoc.ly/redoc/logo-mini.svg"'
_BLANK_IMAGE = b"\"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E\""

# Each page may load from its own origin only: a CDN or any other host is refused by the
# browser too, not just absent from our HTML.
_CSP_UI = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
# FastAPI's docs pages start their bundle with an inline script; ReDoc's search runs in a
# blob: worker.
_CSP_DOCS = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "worker-src 'self' blob:; base-uri 'none'; frame-ancestors 'none'"
)

router = APIRouter(include_in_schema=False)


class _Assets(StaticFiles):
    """Static files that a browser revalidates (ETag, 304) on every load, so an upgraded
    server never runs against a stale cached module."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


@cache
def _redoc_bundle() -> tuple[bytes, str]:
    body = (VENDOR_DIR / "redoc.standalone.js").read_bytes().replace(_REDOC_LOGO, _BLANK_IMAGE)
    return body, f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", ""))


@router.get("/")
def home(request: Request) -> RedirectResponse:
    return RedirectResponse(f"{_root(request)}/ui/", status_code=307)


@router.get("/ui")
def ui_bare(request: Request) -> RedirectResponse:
    # The page's assets are relative to /ui/: without the slash they would miss.
    return RedirectResponse(f"{_root(request)}/ui/", status_code=307)


@router.get("/ui/")
def ui_page() -> FileResponse:
    return FileResponse(
        STATIC_DIR / "index.html",
        headers={"Content-Security-Policy": _CSP_UI, "Cache-Control": "no-cache"},
    )


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    root = _root(request)
    page = get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"Stagewise {__version__} - Swagger UI",
        swagger_js_url=f"{root}/ui/vendor/swagger-ui-bundle.js",
        swagger_css_url=f"{root}/ui/vendor/swagger-ui.css",
        swagger_favicon_url=f"{root}/ui/static/favicon.svg",
        # The default validator badge is an image from another host.
        swagger_ui_parameters={"validatorUrl": None},
    )
    page.headers["Content-Security-Policy"] = _CSP_DOCS
    return page


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    root = _root(request)
    page = get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"Stagewise {__version__} - ReDoc",
        redoc_js_url=f"{root}/ui/vendor/redoc.standalone.js",
        redoc_favicon_url=f"{root}/ui/static/favicon.svg",
        with_google_fonts=False,
    )
    page.headers["Content-Security-Policy"] = _CSP_DOCS
    return page


@router.get("/ui/vendor/redoc.standalone.js")
def redoc_bundle(request: Request) -> Response:
    body, etag = _redoc_bundle()
    headers = {"ETag": etag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="text/javascript", headers=headers)


def install_ui(app: FastAPI) -> None:
    """The pages above and their assets. A missing asset is a 404 in the one error shape."""
    app.include_router(router)  # before the mounts: the ReDoc bundle route wins over them
    app.mount("/ui/static", _Assets(directory=STATIC_DIR), name="ui-static")
    app.mount("/ui/vendor", _Assets(directory=VENDOR_DIR), name="ui-vendor")
