"""What a document that met a runtime outage becomes: sent again, retried later, or failed.

If the runtime itself was down (dead, restarting, or restarted by systemd) and is back, the
document is sent again at once: not its failure. A document the runtime died during twice fails:
it may be what kills the runtime, and re-sending it first forever would stop every job; one that
met a death is a suspect, sent one at a time, so a poison document's second death takes no
innocent neighbours with it. Outages while the runtime answers its health check count toward
`attempts`, with a backoff between them; the last one fails the document with the reason. The
reasons a caller reads name no runtime address (forkpoint.errors.without_urls).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from forkpoint.errors import RuntimeUnavailable, without_urls
from forkpoint.runtime.watch import RuntimeWatch

Key = tuple[str, int]  # (job id, document index)
MAX_BACKOFF_SECONDS = 30.0


@dataclass(frozen=True)
class Verdict:
    """`failure` is the document's error, or None: send it again after `delay` seconds."""

    failure: str | None = None
    delay: float = 0.0


class OutagePolicy:
    def __init__(self, watch: RuntimeWatch, *, attempts: int, down_wait_seconds: float) -> None:
        self.watch, self.attempts, self.down_wait_seconds = watch, attempts, down_wait_seconds
        self._outages: dict[Key, int] = {}  # outages met while the runtime was up
        self._deaths: dict[Key, int] = {}  # runtime deaths met
        self._lock = threading.Lock()
        self.one_suspect = threading.Lock()  # held while a suspect document runs

    def met(self, key: Key, exc: RuntimeUnavailable) -> Verdict:
        """The verdict on document `key`, which met `exc`. Blocks while the runtime is down
        (up to `down_wait_seconds`)."""
        if self.watch.wait_back(self.down_wait_seconds):
            with self._lock:
                self._deaths[key] = deaths = self._deaths.get(key, 0) + 1
            if deaths < 2:
                return Verdict()
            return Verdict(
                "the runtime died twice while processing this document; it may be what makes "
                f"the runtime fail (see the runtime's log): {without_urls(exc.message)}"
            )
        with self._lock:
            self._outages[key] = attempts = self._outages.get(key, 0) + 1
        if attempts >= self.attempts:
            return Verdict(
                f"the runtime was unavailable on {attempts} attempts: {without_urls(exc.message)}"
            )
        return Verdict(delay=min(MAX_BACKOFF_SECONDS, 2.0**attempts))

    def suspect(self, key: Key) -> bool:
        """Whether the runtime died while document `key` was in flight."""
        with self._lock:
            return key in self._deaths

    def forget(self, key: Key) -> None:
        """Document `key` has its result."""
        with self._lock:
            self._outages.pop(key, None)
            self._deaths.pop(key, None)
