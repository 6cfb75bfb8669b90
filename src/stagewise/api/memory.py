"""Keeping the server's resident memory steady under load (glibc only; a no-op elsewhere).

Measured in the 10-minute soak (BENCHMARKS.md, "Soak"): memory in use by malloc grew a
little while bounded caches filled, but the free memory glibc kept in its per-thread arenas
grew by ~190 MiB, because the server's ~40 request threads each get an arena of their own.
Fewer arenas, and handing free pages back to the system now and then, keep RSS near what
is really in use.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading

log = logging.getLogger("stagewise.memory")

_M_ARENA_MAX = -8  # mallopt parameter, from glibc's malloc.h
TRIM_EVERY_S = 30.0


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt  # noqa: B018  (glibc only: musl and others have no mallopt)
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def limit_arenas(arenas: int) -> bool:
    """Caps malloc's arenas; must run before the threads that would create more."""
    libc = _libc()
    return bool(libc is not None and libc.mallopt(_M_ARENA_MAX, arenas) == 1)


class Trimmer:
    """Every TRIM_EVERY_S, returns the free pages of every arena to the system."""

    def __init__(self) -> None:
        self._libc = _libc()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stagewise-trim", daemon=True)

    def start(self) -> None:
        if self._libc is not None:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        assert self._libc is not None
        while not self._stop.wait(TRIM_EVERY_S):
            self._libc.malloc_trim(0)
