"""What every request meets before its body is read: the key check, then the body-size limit.

FastAPI reads and parses a whole body before a route's dependencies run, so a check in a
dependency comes too late: a caller without a key could make the gateway read and parse 64 MB.
This ASGI middleware runs first. It authenticates /v1 and /metrics requests (the Caller is kept
in the request's state for the routes), refuses a declared Content-Length over the limit at
once, and counts the bytes the body actually delivers — chunked bodies and multipart parts
included — raising TooLarge the moment they pass the limit.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import HTTPConnection

from forkpoint.api import errors
from forkpoint.api.auth import Gate
from forkpoint.programs.errors import ForkpointError, TooLarge

GUARDED = ("/v1/", "/metrics")  # paths that need a key (when the gateway is not open)


class Door:
    def __init__(self, app: Any, gate: Gate, max_body_bytes: int) -> None:
        self.app, self.gate, self.max_body_bytes = app, gate, max_body_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            if scope["path"].startswith(GUARDED):
                scope.setdefault("state", {})["caller"] = self.gate.caller(HTTPConnection(scope))
            self._check_declared(scope)
        except ForkpointError as error:
            await errors.response(error)(scope, receive, send)
            return
        await self.app(scope, self._counted(receive), send)

    def _check_declared(self, scope: dict) -> None:
        declared = HTTPConnection(scope).headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise self._too_large(f"body of {declared} bytes")

    def _counted(self, receive: Any) -> Any:
        received = 0

        async def counted() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise self._too_large(f"body of more than {received} bytes")
            return message

        return counted

    def _too_large(self, what: str) -> TooLarge:
        return TooLarge(
            f"{what} exceeds the {self.max_body_bytes} limit",
            hint="raise FORKPOINT_MAX_BODY_BYTES, or send fewer documents per job",
        )
