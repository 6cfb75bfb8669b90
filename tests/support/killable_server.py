"""`python -m stagewise serve` as a child process that a test can SIGKILL (the in-thread
server of tests/support/server.py cannot be killed without killing the test)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
from bench.common import serve_command

from tests.support.server import free_port, loopback_client


class KillableServer:
    """One server process at a time on `data_dir`; each start takes a fresh loopback port.
    The child inherits the environment (PYTHONPATH included, so a test can run another
    checkout's server) plus `env`."""

    def __init__(
        self, data_dir: Path, admin_key: str, env: dict[str, str], args: tuple[str, ...] = ()
    ) -> None:
        self.data_dir = data_dir
        self.admin_key = admin_key
        self.args = args
        self.env = {**os.environ, **env, "STAGEWISE_ADMIN_KEY": admin_key}
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.base_url = ""
        self._log_start = 0  # where this start's output begins in the log

    def spawn(self) -> None:
        """Start the process without waiting for it to serve."""
        assert self.proc is None, "one server at a time"
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        cmd = serve_command(port, self.data_dir, *self.args)
        with self.log_path.open("ab") as log:
            self._log_start = log.tell()
            self.proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited during start-up:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/v1/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"the server did not start within {timeout:.0f} s")

    def start(self, attempts: int = 3) -> None:
        """Spawn and wait until it serves. The free port can be taken between our probe and
        the child's bind (client connections draw from the same ephemeral range): such a
        start is retried on another port; any other start-up failure is raised."""
        for attempt in range(attempts):
            self.spawn()
            try:
                self.wait_ready()
                return
            except RuntimeError:
                lost_port = "address already in use" in self.log_tail(since_start=True)
                self.kill()
                if not lost_port or attempt == attempts - 1:
                    raise

    def kill(self) -> None:
        """SIGKILL our own child (by its handle) and reap it."""
        if self.proc is not None:
            if self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
            self.proc = None

    def stop(self) -> None:
        """A clean shutdown (SIGTERM), falling back to SIGKILL."""
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
            self.proc = None

    def log_tail(self, chars: int = 4000, *, since_start: bool = False) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_start if since_start else 0)
                return log.read().decode(errors="replace")[-chars:]
        except OSError:
            return ""

    def client(self, key: str | None = None, namespace: str | None = None) -> httpx.Client:
        """As ServerHandle.client."""
        return loopback_client(self.base_url, key, namespace)
