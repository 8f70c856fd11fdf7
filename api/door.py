"""What every request meets before its body is read: the Host check, the key check, the body-size
limit and the body's Content-Type.

FastAPI reads and parses a whole body before a route's dependencies run, so a check in a
dependency comes too late: a caller without a key could make the gateway read and parse 64 MB.
This ASGI middleware runs first, in this order:

1. Host (DNS rebinding): on a loopback bind, and beyond it once FORKPOINT_ALLOWED_HOSTS lists
   any name, a request must name a loopback host (127.0.0.0/8, localhost, [::1]; any port) or a
   listed one, else 400. A web page whose own name resolves to 127.0.0.1 sends its name, so it
   cannot reach a local gateway through the browser. Beyond loopback with no list: any host.
2. The key (api/auth.py), on /v1 and /metrics: the Caller is kept in the request's state.
3. A declared Content-Length over the limit: 413 at once.
4. A /v1 request with a body must say it is JSON (multipart/form-data too for POST /v1/jobs
   and POST /v1/files, whose limit is FORKPOINT_MAX_FILE_BYTES plus a form's overhead),
   else 415: a web page can send text/plain or a form to any address without asking the
   browser's permission (no CORS preflight), never application/json.

Then it counts the bytes the body actually delivers — chunked bodies and multipart parts
included — raising TooLarge the moment they pass the limit.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from forkpoint.api import errors
from forkpoint.api.auth import Gate
from forkpoint.errors import ForkpointError, QueueFull, RequestError, TooLarge

GUARDED = ("/v1/", "/metrics")  # paths that need a key (when the gateway is not open)
JSON = "application/json"
MULTIPART = "multipart/form-data"
MULTIPART_PATHS = ("/v1/jobs", "/v1/files")  # the only routes that read a form (POST)
UPLOAD_PATH = "/v1/files"  # an OpenAI file upload: its own body limit (max_file_bytes)
MULTIPART_OVERHEAD = 1024 * 1024  # a form's boundaries and other fields around the file
PORT = re.compile(r"[0-9]{0,5}")


class Refused(Exception):
    """A refusal the error classes have no status for: `error` answered with `status`."""

    def __init__(self, error: ForkpointError, status: int) -> None:
        super().__init__(error.message)
        self.error, self.status = error, status


class Door:
    def __init__(self, app: Any, gate: Gate, max_body_bytes: int) -> None:
        self.app, self.gate, self.max_body_bytes = app, gate, max_body_bytes
        settings = gate.settings
        # POST /v1/files takes one file up to max_file_bytes (OpenAI's 200 MB at most)
        self.max_upload_bytes = settings.max_file_bytes + MULTIPART_OVERHEAD
        listed = (host_name(host) for host in settings.allowed_hosts)  # a port given is ignored
        self.allowed_hosts = frozenset(name for name in listed if name)
        # Checked on a loopback bind always (open or not); beyond it only once names are listed.
        self.check_host = settings.is_loopback or bool(self.allowed_hosts)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        try:
            self._check_host(connection)
            if scope["path"].startswith(GUARDED):
                scope.setdefault("state", {})["caller"] = self.gate.caller(connection)
            limit = self._limit(scope)
            self._check_declared(connection, limit)
            self._check_media_type(scope, connection)
        except ForkpointError as error:
            await errors.response(error)(scope, receive, send)
            return
        except Refused as refused:
            await errors.response(refused.error, status=refused.status)(scope, receive, send)
            return
        await self.app(scope, self._counted(receive, limit), send)

    def _limit(self, scope: dict) -> int:
        """The body limit of this request: an upload's, or every other body's."""
        upload = scope["method"] == "POST" and scope["path"].rstrip("/") == UPLOAD_PATH
        return self.max_upload_bytes if upload else self.max_body_bytes

    def _check_host(self, connection: HTTPConnection) -> None:
        if not self.check_host:
            return
        given = connection.headers.get("host", "")
        name = host_name(given)
        if name is not None and (is_loopback_name(name) or name in self.allowed_hosts):
            self._check_origin(connection)
            return
        shown = given if len(given) <= 100 else given[:100] + "…"
        raise Refused(
            RequestError(
                f"this gateway does not answer requests for the host {shown!r}",
                hint="call it by a loopback address (127.0.0.1, localhost, [::1]); the "
                "gateway's operator can allow other names with FORKPOINT_ALLOWED_HOSTS",
            ),
            400,
        )

    def _check_origin(self, connection: HTTPConnection) -> None:
        """A browser names the page that sends a request in Origin: a page from elsewhere may
        POST a form to a loopback gateway without asking (no CORS preflight), so where the Host
        is checked, an Origin that is not loopback or listed is refused (403)."""
        origin = connection.headers.get("origin")
        if origin is None:
            return
        name = urlsplit(origin).hostname if origin != "null" else None
        if name is not None and (is_loopback_name(name) or name in self.allowed_hosts):
            return
        raise Refused(
            RequestError(
                f"this gateway does not answer requests sent by the page {origin[:100]!r}",
                hint="call it from a program, not a web page; the gateway's operator can allow "
                "a page's host with FORKPOINT_ALLOWED_HOSTS",
            ),
            403,
        )

    def _check_declared(self, connection: HTTPConnection, limit: int) -> None:
        declared = connection.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise self._too_large(f"body of {declared} bytes", limit)

    def _check_media_type(self, scope: dict, connection: HTTPConnection) -> None:
        if not scope["path"].startswith("/v1/") or not has_body(connection):
            return
        given = connection.headers.get("content-type", "")
        media = given.partition(";")[0].strip().lower()
        accepted = [JSON]
        if scope["method"] == "POST" and scope["path"].rstrip("/") in MULTIPART_PATHS:
            accepted.append(MULTIPART)
        if media in accepted:
            return
        shown = repr(given[:100]) if given else "none"
        raise Refused(
            RequestError(
                f"{scope['method']} {scope['path']} takes {' or '.join(accepted)}, "
                f"not a body of type {shown}",
                hint=f"send the body with 'Content-Type: {JSON}'",
            ),
            415,
        )

    def _counted(self, receive: Any, limit: int) -> Any:
        received = 0

        async def counted() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise self._too_large(f"body of more than {received} bytes", limit)
            return message

        return counted

    def _too_large(self, what: str, limit: int) -> TooLarge:
        if limit == self.max_upload_bytes:
            hint = "split the file, or raise FORKPOINT_MAX_FILE_BYTES (200 MB at most)"
        else:
            hint = "raise FORKPOINT_MAX_BODY_BYTES, or send fewer documents per job"
        return TooLarge(f"{what} exceeds the {limit} limit", hint=hint)


def has_body(connection: HTTPConnection) -> bool:
    """Whether the request announces a body: a non-zero Content-Length, or chunked."""
    length = connection.headers.get("content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "transfer-encoding" in connection.headers


def host_name(header: str) -> str | None:
    """The name in a Host header, lowercased, without its port or a final dot ('[::1]:8000' ->
    '::1'); None if the header is not a plain host with an optional numeric port."""
    header = header.strip().lower()
    if header.startswith("["):  # an IPv6 address
        name, closed, rest = header[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            return None
        port = rest[1:]
    else:
        name, _, port = header.partition(":")  # an IPv6 address without brackets fails here
    if not PORT.fullmatch(port):
        return None
    return name.rstrip(".") or None


def is_loopback_name(name: str) -> bool:
    """127.0.0.0/8, ::1 and localhost: names no web page can make resolve elsewhere."""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class StreamSlots:
    """At most `limit` long-lived streamed answers (results streams) open at once, per gateway:
    past it QueueFull (429 with Retry-After). A slot is held from `stream` until the response
    has finished sending — completed, failed, or its client gone."""

    def __init__(self, limit: int) -> None:
        self.limit, self.open = limit, 0
        self._lock = threading.Lock()

    def stream(self, content: Any, *, media_type: str) -> StreamingResponse:
        with self._lock:
            if self.open >= self.limit:
                raise QueueFull(
                    f"all {self.limit} results streams of this gateway are open",
                    hint="retry later, or raise FORKPOINT_MAX_RESULT_STREAMS",
                )
            self.open += 1
        return _HeldStream(content, media_type=media_type, release=self._release)

    def _release(self) -> None:
        with self._lock:
            self.open -= 1


class _HeldStream(StreamingResponse):
    def __init__(self, content: Any, *, media_type: str, release: Callable[[], None]) -> None:
        super().__init__(content, media_type=media_type)
        self._release: Callable[[], None] | None = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()
