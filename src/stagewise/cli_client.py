"""What the commands that talk to a server over HTTP share: the connection options
(STAGEWISE_URL, STAGEWISE_API_KEY, STAGEWISE_NAMESPACE), one client, one reading of the
server's error shape and one way to end on an error (a message, exit status 1, no traceback)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

console = Console()
DEFAULT_URL = "http://127.0.0.1:8000"
RETRY_STATUSES = frozenset({429, 502, 503, 504})

Url = Annotated[str, typer.Option(envvar="STAGEWISE_URL", help="The server")]
ApiKey = Annotated[
    str, typer.Option(envvar="STAGEWISE_API_KEY", help="API key", show_default=False)
]
Namespace = Annotated[
    str | None, typer.Option(envvar="STAGEWISE_NAMESPACE", help="Namespace (name or id)")
]


class CliError(Exception):
    """Ends the command with a message (and exit status 1)."""


class ApiError(CliError):
    """An error answer, read from the server's shape {"success": false, "status", "error":
    {"message", "type", "code", "details"}} (or the raw text when it is not that shape)."""

    def __init__(self, method: str, path: str, res: httpx.Response) -> None:
        self.status = res.status_code
        self.code: str | None = None
        self.details: dict[str, Any] = {}
        try:
            error = res.json()["error"]
            self.message = str(error["message"])
            self.code = error.get("code") or error.get("type")
            self.details = error.get("details") or {}
        except (ValueError, KeyError, TypeError):
            self.message = res.text[:500] or res.reason_phrase
        code = f" {self.code}" if self.code else ""
        super().__init__(f"{method} {path} -> HTTP {self.status}{code}: {self.message}")

    @property
    def short(self) -> str:
        """The message with its status, for a line of a report."""
        return f"HTTP {self.status}{f' {self.code}' if self.code else ''}: {self.message}"


class Api:
    def __init__(self, url: str, api_key: str, namespace: str | None) -> None:
        headers = {"Authorization": f"Bearer {api_key}"}
        if namespace:
            headers["X-Namespace"] = namespace
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=120)

    def call(self, method: str, path: str, *, retries: int = 0, **kwargs: Any) -> Any:
        """The answer's JSON. `retries`: how often a lost connection, a 429 or a 502-504 is
        tried again (with backoff); only for requests that are safe to repeat."""
        for attempt in range(retries + 1):
            last = attempt == retries
            try:
                res = self.http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if last:
                    raise CliError(f"cannot reach {self.http.base_url}: {exc}") from exc
                time.sleep(min(8.0, 0.5 * 2**attempt))
                continue
            if res.status_code in RETRY_STATUSES and not last:
                time.sleep(_retry_after(res) or min(8.0, 0.5 * 2**attempt))
                continue
            if res.status_code >= 400:
                raise ApiError(method, path, res)
            return res.json() if res.content else None
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.http.close()


def _retry_after(res: httpx.Response) -> float | None:
    try:
        return min(30.0, float(res.headers.get("Retry-After", "")))
    except ValueError:
        return None


def fail(message: str) -> typer.Exit:
    """Prints `message` in red (never read as markup) and returns the exit to raise."""
    console.print(Text(message, style="red"), soft_wrap=True)
    return typer.Exit(1)


def progress_bar(*columns: ProgressColumn) -> Progress:
    """The commands' progress bar: what, the bar, done/total, then `columns` (by default the
    time elapsed)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *(columns or (TimeElapsedColumn(),)),
        console=console,
    )


@contextmanager
def session(url: str, api_key: str, namespace: str | None) -> Iterator[Api]:
    """A client for the command's body; a CliError raised in it ends the command."""
    if not api_key:
        raise typer.BadParameter("set STAGEWISE_API_KEY (or --api-key)", param_hint="--api-key")
    api = Api(url, api_key, namespace)
    try:
        yield api
    except CliError as exc:
        raise fail(str(exc)) from exc
    finally:
        api.close()
