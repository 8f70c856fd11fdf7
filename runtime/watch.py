"""Whether the runtime is down and when it is back: what the gateway asks after an outage.

Two runtimes answer it: one this gateway launched and restarts (runtime/supervisor.py
`RuntimeSupervisor`, which knows when its process died and when the new one is ready), and one
someone else runs (`RemoteRuntime`: systemd, another machine, a router), which is asked
`/health` until it answers again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from forkpoint.runtime.launcher import is_ready


class RuntimeWatch(Protocol):
    def wait_back(self, seconds: float) -> bool:
        """True if the runtime was down and is back (within `seconds`); False if it is up now,
        or did not come back, or will not (a supervisor that gave up)."""
        ...


class RemoteRuntime:
    """A runtime someone else runs and restarts, watched through its /health."""

    def __init__(
        self,
        url: str,
        *,
        poll_seconds: float = 2.0,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self.url, self.poll_seconds, self.stopping = url, poll_seconds, stopping

    def wait_back(self, seconds: float) -> bool:
        if is_ready(self.url, "/health"):
            return False
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.stopping():
            time.sleep(self.poll_seconds)
            if is_ready(self.url, "/health"):
                return True
        return False
