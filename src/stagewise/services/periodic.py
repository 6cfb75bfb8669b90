"""A daemon thread that does one round of upkeep every few seconds until stopped."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("stagewise.upkeep")


class Periodic:
    """Calls `tick()` every `every_s` seconds (first at once when `at_start`). A round that
    raises is logged and the next one retries: upkeep never stops the server."""

    def __init__(self, name: str, every_s: float, *, at_start: bool = False) -> None:
        self.name = name
        self.every_s = every_s
        self.at_start = at_start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def tick(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        if self.at_start:
            self._round()
        while not self._stop.wait(self.every_s):
            self._round()

    def _round(self) -> None:
        try:
            self.tick()
        except Exception:  # the next round retries; a failed round loses nothing
            log.exception("%s: a round of upkeep failed", self.name)
