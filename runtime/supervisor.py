"""Keep the gateway's own runtime up: notice when it dies, restart it, bounded, with backoff.

`forkpoint serve` (without --sglang-url) owns its SGLang server. If that server dies — killed
by the OOM killer, a crashed scheduler, a SIGKILL — the supervisor sees the process gone within
a second, restarts it with the same profile (and port), and sets `ready` again once it can
generate. Workers that meet the outage wait for `ready` instead of failing their documents, then
warm the task prefix again (a new server has an empty cache) and re-send what was in flight.
Restarts are bounded: more than `max_restarts` within `window_seconds` and it gives up, so a
server that cannot stay up fails its documents with a clear reason instead of looping forever.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from forkpoint.programs.errors import RuntimeUnavailable
from forkpoint.runtime.launcher import RuntimeServer

log = logging.getLogger("forkpoint.supervisor")
BACKOFF_SECONDS = (1.0, 5.0, 15.0, 30.0, 60.0)


class RuntimeSupervisor:
    def __init__(
        self,
        server: RuntimeServer,
        *,
        max_restarts: int = 5,
        window_seconds: float = 600.0,
        on_restart: Callable[[], None] | None = None,
    ) -> None:
        self.server = server
        self.max_restarts = max_restarts
        self.window_seconds = window_seconds
        self.on_restart = on_restart
        self.ready = threading.Event()
        self.restarts = 0
        self.gave_up: str | None = None  # why, once it stopped trying
        self._recent: deque[float] = deque()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> RuntimeSupervisor:
        self.server.start()
        self.ready.set()
        self._thread = threading.Thread(target=self._watch, name="fp-supervisor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.server.stop()

    def wait_ready(self, timeout: float) -> bool:
        """Block until the runtime can generate (True), it gave up or `timeout` passed (False)."""
        deadline = time.monotonic() + timeout
        while not self.ready.wait(timeout=1.0):
            if self.gave_up or self._stopping.is_set() or time.monotonic() > deadline:
                return False
        return True

    def _watch(self) -> None:
        while not self._stopping.wait(1.0):
            if self.server.running:
                continue
            self.ready.clear()
            code = self.server.process.returncode if self.server.process else None
            log.warning("the SGLang runtime exited (code %s); restarting it", code)
            self._restart()
            if self.gave_up:
                return

    def _restart(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            now = time.monotonic()
            while self._recent and now - self._recent[0] > self.window_seconds:
                self._recent.popleft()
            if len(self._recent) >= self.max_restarts:
                self.gave_up = (
                    f"the runtime died {len(self._recent)} times within "
                    f"{self.window_seconds:.0f} s; not restarting it again"
                )
                log.error("%s (log: %s)", self.gave_up, self.server.log_path)
                return
            self._recent.append(now)
            self._stopping.wait(BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)])
            attempt += 1
            self.server.stop()  # whatever is left of the old process group
            try:
                self.server.start()
            except RuntimeUnavailable as exc:
                log.error("restarting the runtime failed: %s", exc.message)
                continue
            self.restarts += 1
            if self.on_restart is not None:
                self.on_restart()
            self.ready.set()
            log.warning("the SGLang runtime is back at %s (restart %d)", self.url, self.restarts)
            return
