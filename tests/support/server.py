"""Run a real uvicorn server on a free loopback port, in a thread of the test process."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from stagewise.api.app import create_app
from stagewise.config import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerHandle:
    base_url: str
    admin_key: str
    data_dir: Path
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def client(self, key: str | None = None, namespace: str | None = None) -> httpx.Client:
        return loopback_client(self.base_url, key, namespace)


def loopback_client(base_url: str, key: str | None, namespace: str | None) -> httpx.Client:
    """A client with the key and namespace headers set (either may be left out)."""
    headers = {}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if namespace is not None:
        headers["X-Namespace"] = namespace
    return httpx.Client(base_url=base_url, headers=headers, timeout=60)


def start_server(data_dir: Path, *, admin_key: str, **settings: Any) -> ServerHandle:
    port = free_port()
    app = create_app(Settings(data_dir=data_dir, admin_key=admin_key, **settings))
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the server thread died during start-up")
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not start within 120 s")
        time.sleep(0.05)
    return ServerHandle(f"http://127.0.0.1:{port}", admin_key, data_dir, server, thread)
