"""Who is calling: bearer API keys, compared in constant time, turned into a `Caller`.

Open (no key needed) only when asked for (FORKPOINT_OPEN=1) on a loopback bind with no key source
configured (`Settings.is_open`). Otherwise it fails closed: the keys are read on every request
(the file too, so rotation needs no restart); no key source at all, or one that holds no key
(blank keys are none), refuses every request with 401, a key file that cannot be read with 503
(KeysUnavailable). Either is logged on
"forkpoint.api" when it starts and then at most once a minute while it lasts (a client retrying
in a loop must not flood the log); a request that authenticates ends it, so the next one is
logged at once.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from dataclasses import dataclass

from starlette.requests import HTTPConnection

from forkpoint.api.settings import Settings
from forkpoint.errors import KeysUnavailable, Unauthorized

LOG_EVERY_SECONDS = 60.0
log = logging.getLogger("forkpoint.api")


def owner_id(key: str) -> str:
    """What a job stores of the key that created it: not the key, a short hash of it."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Caller:
    """The identity a request acts as. `owner` is None on an open gateway, whose one local user
    is an admin (anyone who can reach it can read its database file anyway)."""

    owner: str | None
    is_admin: bool

    def may_see(self, job_owner: str | None) -> bool:
        """Own jobs, or every job for an admin. Jobs with no owner (an open gateway's, or from a
        store older than job owners) are therefore an admin's only once keys are configured."""
        return self.is_admin or (self.owner is not None and job_owner == self.owner)

    @property
    def listing_owner(self) -> str | None:
        """The owner whose jobs the caller lists; None: every job."""
        return None if self.is_admin else self.owner


OPEN = Caller(owner=None, is_admin=True)


class Gate:
    """Turns a request into a Caller, or refuses it. One per app (it keeps the log throttle)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._last_logged: dict[str, float] = {}  # refusal kind -> when it was last logged

    def caller(self, request: HTTPConnection) -> Caller:
        settings = self.settings
        if settings.is_open:
            return OPEN
        try:
            keys = settings.keys()
        except (OSError, UnicodeError) as exc:
            reason = f"cannot read the API key file {settings.api_keys_file} ({exc})"
            self._warn("unreadable", f"{reason}: refusing every request with 503")
            raise KeysUnavailable(
                "the gateway cannot read its API key file",
                hint="retry later; the gateway's operator must restore FORKPOINT_API_KEYS_FILE",
            ) from None
        if not settings.has_key_source:  # loopback (beyond it, Settings refuses to start)
            self._warn(
                "unconfigured",
                "no API key source is configured and FORKPOINT_OPEN is not set: refusing every "
                "request with 401",
            )
            raise Unauthorized(
                "this gateway has no API keys configured and is not open",
                hint="the gateway's operator must configure keys (FORKPOINT_API_KEYS or "
                "FORKPOINT_API_KEYS_FILE) or, for a local single-user gateway, set "
                "FORKPOINT_OPEN=1 (forkpoint serve --open)",
            )
        if not keys:
            sources = "FORKPOINT_API_KEYS, FORKPOINT_ADMIN_KEYS"
            if settings.api_keys_file is not None:
                sources += f" and the file {settings.api_keys_file}"
            self._warn(
                "empty",
                "no API key is configured (%s hold none): refusing every request with 401",
                sources,
            )
            raise Unauthorized(
                "no API key is configured on this gateway",
                hint="the gateway's operator must add a key (FORKPOINT_API_KEYS_FILE)",
            )
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        # Compare against every key, always, so timing says nothing about which one nearly matched.
        matched = admin = False
        for key in keys:
            matched |= hmac.compare_digest(token.encode(), key.encode())
        for key in settings.admin_tokens():
            admin |= hmac.compare_digest(token.encode(), key.encode())
        if scheme.lower() != "bearer" or not token or not matched:
            raise Unauthorized(
                "missing or wrong API key", hint="send 'Authorization: Bearer <key>'"
            )
        if self._last_logged:
            with self._lock:
                self._last_logged.clear()
        return Caller(owner=owner_id(token), is_admin=admin)

    def _warn(self, kind: str, message: str, *args: object) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last_logged.get(kind)
            if last is not None and now - last < LOG_EVERY_SECONDS:
                return
            self._last_logged[kind] = now
        log.warning(message, *args)
