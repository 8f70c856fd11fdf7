"""Bearer API keys, compared in constant time. No keys configured: open (loopback only)."""

from __future__ import annotations

import hmac

from fastapi import Request

from forkpoint.api.settings import Settings
from forkpoint.programs.errors import Unauthorized


def check_key(request: Request, settings: Settings) -> None:
    keys = settings.keys()
    if not keys:
        return
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    # Compare against every key, always, so timing says nothing about which one nearly matched.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(token.encode(), key.encode())
    if scheme.lower() != "bearer" or not matched:
        raise Unauthorized("missing or wrong API key", hint="send 'Authorization: Bearer <key>'")
