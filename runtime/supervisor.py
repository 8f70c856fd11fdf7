"""Keep the gateway's own runtime up: notice when it dies, restart it, bounded, with backoff.

`forkpoint serve` (without --sglang-url) owns its SGLang server. If that server dies — killed
by the OOM killer, a crashed scheduler, a SIGKILL — the supervisor sees the process gone within
a second, restarts it with the same profile (and port), and sets `ready` again once it can
generate. Workers that meet the outage wait for `ready` instead of failing their documents, then
warm the task prefix again (a new server has an empty cache) and re-send what was in flight.
Restarts are bounded: more than `max_restarts` within `window_seconds` is a crash loop, and it
gives up (`gave_up` says why) so a server that cannot stay up fails documents with a clear reason
instead of being restarted in a tight loop. Giving up lasts only while the crash loop is inside
the window: once the oldest of those restarts is `window_seconds` old, it tries again, and after
`window_seconds` without a death the whole budget is back. A runtime that crashed five times
one night is not left dead for the rest of the gateway's life.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from forkpoint.errors import RuntimeUnavailable
from forkpoint.runtime.launcher import RuntimeServer

log = logging.getLogger("forkpoint.supervisor")
BACKOFF_SECONDS = (1.0, 5.0, 15.0, 30.0, 60.0)


class RestartBudget:
    """At most `max_restarts` restarts within any `window_seconds` (a sliding window): a restart
    older than the window no longer counts, so after a window without one the budget is full."""

    def __init__(
        self,
        max_restarts: int,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_restarts = max_restarts
        self.window_seconds = window_seconds
        self.clock = clock
        self._recent: deque[float] = deque()

    def _forget_old(self) -> float:
        now = self.clock()
        while self._recent and now - self._recent[0] >= self.window_seconds:
            self._recent.popleft()
        return now

    @property
    def remaining(self) -> int:
        self._forget_old()
        return self.max_restarts - len(self._recent)

    def take(self) -> bool:
        """Count one restart now; False (and nothing counted) if the budget is spent."""
        now = self._forget_old()
        if len(self._recent) >= self.max_restarts:
            return False
        self._recent.append(now)
        return True

    def seconds_until_free(self) -> float:
        """How long until `take` can succeed (0 if it can now)."""
        now = self._forget_old()
        if len(self._recent) < self.max_restarts:
            return 0.0
        return self._recent[0] + self.window_seconds - now


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
        self.budget = RestartBudget(max_restarts, window_seconds)
        self.on_restart = on_restart
        self.ready = threading.Event()
        self.restarts = 0
        # why it is not restarting the runtime (a crash loop), until the window lets it again
        self.gave_up: str | None = None
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

    def wait_back(self, seconds: float) -> bool:
        """runtime/watch.py's question: True if the runtime was down and is ready again within
        `seconds`; False if it is up (it did not die), or gave up, or was not back in time."""
        if self.gave_up:
            return False
        time.sleep(1.0)  # the watch loop looks at the process every second
        if self.ready.is_set():
            return False
        return self.wait_ready(timeout=seconds)

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

    def _restart(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            if not self.budget.take():
                pause = self.budget.seconds_until_free()
                if self.gave_up is None:
                    budget = self.budget
                    self.gave_up = (
                        f"the runtime died {budget.max_restarts} times within "
                        f"{budget.window_seconds:.0f} s; not restarting it for {pause:.0f} s"
                    )
                    log.error("%s (log: %s)", self.gave_up, self.server.log_path)
                self._stopping.wait(max(pause, 0.1))
                continue
            if self.gave_up is not None:
                log.warning("the crash loop's window has passed: restarting the runtime again")
                self.gave_up = None
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
