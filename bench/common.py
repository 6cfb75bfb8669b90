"""Shared benchmark helpers: run a stagewise server as a subprocess, talk to it over HTTP."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent


class BenchError(RuntimeError):
    """A failure of the benchmark run itself (never a poor quality number)."""


class ApiError(BenchError):
    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} -> HTTP {status}: {body[:2000]}")
        self.status = status
        self.body = body


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    """`python -m stagewise serve` in a child process (so client work never steals its GIL)."""

    base_url: str
    admin_key: str
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes]
    _log_file: Any = field(repr=False, default=None)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout: float = 30) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # our own child, by its handle
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_command(port: int, data_dir: Path, *args: str) -> list[str]:
    """`python -m stagewise serve` on a loopback port, quiet but for warnings (the benchmarks'
    servers and the tests' killable ones)."""
    return [
        sys.executable,
        "-m",
        "stagewise",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--log-level",
        "warning",
        *args,
    ]


def start_server(
    data_dir: Path,
    *,
    admin_key: str,
    env: dict[str, str] | None = None,
    startup_timeout: float = 180,
) -> ServerProcess:
    """Start a server on a free loopback port with `data_dir`; wait until /v1/health answers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = data_dir / "bench-server.log"
    log_file = log_path.open("ab")
    child_env = dict(os.environ)
    child_env.update(env or {})
    child_env["STAGEWISE_ADMIN_KEY"] = admin_key
    cmd = serve_command(port, data_dir)
    proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=child_env)
    server = ServerProcess(
        f"http://127.0.0.1:{port}", admin_key, data_dir, log_path, proc, log_file
    )
    deadline = time.monotonic() + startup_timeout
    while True:
        if proc.poll() is not None:
            server.stop()
            raise BenchError(
                f"the server exited with code {proc.returncode} during start-up:\n"
                + server.log_tail()
            )
        try:
            if httpx.get(f"{server.base_url}/v1/health", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise BenchError(f"the server did not start within {startup_timeout:.0f} s")
        time.sleep(0.1)


class Api:
    """A thin JSON client: raises ApiError on any non-2xx answer, returns the decoded body."""

    def __init__(
        self, base_url: str, key: str, namespace: str | None = None, timeout: float = 300
    ) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        if namespace is not None:
            headers["X-Namespace"] = namespace
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, json: Any = None, **kwargs: Any) -> Any:
        try:
            r = self.http.request(method, path, json=json, **kwargs)
        except httpx.HTTPError as exc:
            raise BenchError(f"{method} {path} failed: {exc!r}") from exc
        if not r.is_success:
            raise ApiError(method, path, r.status_code, r.text)
        return r.json() if r.content else None

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.request("POST", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)


def ensure_namespace(api: Api, name: str) -> None:
    """Create the namespace unless it exists already (a reused data dir)."""
    try:
        api.post("/v1/namespaces", json={"namespace_name": name})
    except ApiError as exc:
        if exc.status != 409:
            raise


def machine_info() -> dict[str, Any]:
    mem_gb: float | None = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "mem_total_gb": mem_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def git_revision() -> dict[str, Any]:
    def run(*args: str) -> str:
        try:
            out = subprocess.run(
                ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError):
            return ""
        return out.stdout.strip()

    return {"commit": run("rev-parse", "HEAD") or None, "dirty": bool(run("status", "--porcelain"))}
