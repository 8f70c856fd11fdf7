"""ForkpointError → HTTP status and JSON body. The only place the gateway decides either."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from forkpoint.api.jobs import QueueFull
from forkpoint.api.store import IdempotencyConflict
from forkpoint.programs.errors import (
    DocumentError,
    ForkpointError,
    OutputError,
    RuntimeUnavailable,
    SchemaError,
    TaskError,
)

STATUS: dict[type[ForkpointError], int] = {
    SchemaError: 422,
    TaskError: 422,
    DocumentError: 422,
    OutputError: 422,
    IdempotencyConflict: 409,
    QueueFull: 429,
    RuntimeUnavailable: 503,
}
RETRY_AFTER_SECONDS = 30


def status_of(error: ForkpointError) -> int:
    for kind in type(error).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 500


def install(app: FastAPI) -> None:
    @app.exception_handler(ForkpointError)
    async def _forkpoint_error(request: Request, error: ForkpointError) -> JSONResponse:
        status = status_of(error)
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status in (429, 503) else None
        body = {"error": error.message, "hint": error.hint, "retryable": error.retryable}
        return JSONResponse(body, status_code=status, headers=headers)
