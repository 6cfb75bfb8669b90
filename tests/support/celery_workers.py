"""Celery for tests: a private queue on the local RabbitMQ (so runs never see each other's
messages) and `python -m stagewise worker` child processes that a test can SIGKILL whole
(the Celery parent and its prefork children share one process group)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import kombu

BROKER_URL = os.environ.get("STAGEWISE_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")


def check_broker() -> None:
    try:
        with kombu.Connection(BROKER_URL, connect_timeout=5) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:
        raise AssertionError(
            f"these tests need RabbitMQ at {BROKER_URL} (.ci/run starts it)"
        ) from exc


@contextlib.contextmanager
def private_queue(prefix: str = "swtest") -> Iterator[dict[str, str]]:
    """The broker environment of one test: its own queue, deleted (with its exchange) after."""
    check_broker()
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    try:
        yield {"STAGEWISE_BROKER_URL": BROKER_URL, "STAGEWISE_BROKER_QUEUE": name}
    finally:
        with kombu.Connection(BROKER_URL, connect_timeout=5) as conn:
            channel = conn.channel()
            with contextlib.suppress(Exception):
                channel.queue_delete(name)
            channel = conn.channel()  # a refused delete closes the channel
            with contextlib.suppress(Exception):
                channel.exchange_delete(name)


class WorkerProcess:
    """`python -m stagewise worker` in its own session; `kill()` SIGKILLs its process group."""

    def __init__(
        self, data_dir: Path, env: dict[str, str], concurrency: int = 1, threads: int = 0
    ) -> None:
        self.env = {**os.environ, **env, "STAGEWISE_DATA_DIR": str(data_dir)}
        self.concurrency = concurrency
        self.threads = threads
        self.log_path = data_dir.parent / f"{data_dir.name}-worker-{uuid.uuid4().hex[:6]}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120) -> None:
        """Start it; wait until it consumes and every pool process has loaded the model."""
        cmd = [sys.executable, "-m", "stagewise", "worker"]
        cmd += ["--concurrency", str(self.concurrency), "--threads", str(self.threads)]
        cmd += ["--log-level", "info"]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the worker exited during start-up:\n{self.log_tail()}")
            log = self.log_tail(1_000_000)
            if "Unrecoverable error" in log:
                raise RuntimeError(f"the worker failed to start consuming:\n{self.log_tail()}")
            if " ready." in log and log.count(" warmed up") >= self.concurrency:
                return
            time.sleep(0.1)
        raise RuntimeError(f"the worker was not ready within {timeout:.0f} s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL the Celery parent and its pool children (our child's own group) and reap."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
            self.proc = None

    def stop(self) -> None:
        """A warm shutdown (SIGTERM to the group), falling back to SIGKILL."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
                self.proc = None
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""
