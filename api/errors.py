"""Every error the gateway answers, in one JSON shape: {"error", "hint", "retryable", "kind"}.

A ForkpointError answers its class's `http_status` (core/errors.py), with Retry-After on 429
and 503 and WWW-Authenticate on 401; "kind" is its class name, which the LAN client raises
again. FastAPI's and Starlette's own refusals (invalid JSON or fields: 422; an unparsable body:
400, but 422 for JSON nested too deeply to parse; no such route: 404; wrong method: 405), the
body-size limit (413, api/app.py) and anything unexpected (500, logged here with its traceback,
answered without it) take the same shape, so a client reads one kind of body whatever went wrong.
Every answer carries an `X-Request-Id` (the caller's, if it sent a sane one); a 500 names it in
its hint and its log line, so an operator finds the traceback a user reports.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.middleware.base import RequestResponseEndpoint

from forkpoint.errors import (
    ForkpointError,
    NotFound,
    RequestError,
    RuntimeTimeout,
    RuntimeUnavailable,
    without_urls,
)

RETRY_AFTER_SECONDS = 30
STARLETTE_STATUSES = (400, 404, 405)  # what routing and body parsing refuse with by themselves
log = logging.getLogger("forkpoint.api")
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Errors about the runtime name where it is (its URL): that stays in the gateway's log.
RUNTIME_ERRORS = (RuntimeUnavailable, RuntimeTimeout)


def request_id(request: Request) -> str:
    """The caller's X-Request-Id when it is short and plain, else a new one."""
    given = request.headers.get("x-request-id", "")
    return given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex[:16]


def response(
    error: ForkpointError, *, status: int | None = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The answer to `error`: its class's status unless `status` is given."""
    status = status or error.http_status
    sent = dict(headers or {})
    if status in (429, 503):
        sent["Retry-After"] = str(RETRY_AFTER_SECONDS)
    if status == 401:
        sent["WWW-Authenticate"] = "Bearer"
    message = error.message
    if isinstance(error, RUNTIME_ERRORS) and without_urls(message) != message:
        log.warning("answered %d: %s", status, message)
        message = without_urls(message)
    body = {"error": message, "hint": error.hint, "retryable": error.retryable}
    return JSONResponse({**body, "kind": error.kind}, status_code=status, headers=sent)


def invalid_request(error: RequestValidationError) -> RequestError:
    """FastAPI's validation errors as one line: 'body.documents.0.text: Field required; …'."""
    reasons = "; ".join(
        f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in error.errors()
    )
    return RequestError(f"invalid request: {reasons}")


def install(app: FastAPI) -> None:
    @app.exception_handler(ForkpointError)
    async def _forkpoint_error(request: Request, error: ForkpointError) -> JSONResponse:
        return response(error)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return response(invalid_request(error))

    async def _starlette(request: Request, error: HTTPException) -> JSONResponse:
        """Starlette's own refusals: an unparsable body, no such route, method not allowed."""
        if (known := forkpoint_cause(error.__cause__)) is not None:  # raised reading the body
            return response(known)
        if isinstance(error.__cause__, RecursionError):  # FastAPI's json.loads of a body
            return response(RequestError("the JSON body is nested too deeply to read"))
        kind = {400: RequestError, 404: NotFound}.get(error.status_code, ForkpointError)
        return response(kind(str(error.detail)), status=error.status_code, headers=error.headers)

    for status in STARLETTE_STATUSES:  # the decorator's type takes a handler of HTTPException
        app.exception_handler(status)(_starlette)

    @app.middleware("http")
    async def _unexpected(request: Request, call_next: RequestResponseEndpoint) -> Response:
        """Anything no handler knows: logged with its traceback and the request id, answered
        500 without the traceback."""
        rid = request_id(request)
        try:
            answer = await call_next(request)
        except Exception as exc:
            known = forkpoint_cause(exc)  # e.g. TooLarge from the body stream (api/door.py)
            if known is not None:
                answer = response(known)
            else:
                log.exception(
                    "unexpected error in %s %s (request %s)", request.method, request.url.path, rid
                )
                hint = f"the gateway's log has the details under request id {rid}"
                answer = response(ForkpointError("internal error", hint=hint))
        answer.headers["X-Request-Id"] = rid
        return answer


def forkpoint_cause(exc: BaseException | None) -> ForkpointError | None:
    """The ForkpointError behind `exc`: itself, its cause, or one inside an exception group
    (Starlette's middleware re-raises an error from the body stream wrapped in both)."""
    seen = 0
    while exc is not None and seen < 16:
        if isinstance(exc, ForkpointError):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            found = [forkpoint_cause(inner) for inner in exc.exceptions]
            return next((f for f in found if f is not None), None)
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None
