"""forkpoint's errors: what went wrong, what to do about it, and how each layer reports it.

Every error a user can cause or meet is a `ForkpointError`, defined here and nowhere else. Each
class carries its own answers: `http_status` (the gateway's status, api/errors.py), `exit_code`
(the CLI's, cli/errors.py) and `kind` (its name: the gateway's JSON body carries it, and the
LAN client rebuilds the same class from it with `error_class`).

Not here: `forkpoint.programs.program.ServerError`, SGLang answering 5xx. It is a
ConnectionError on purpose: the batch driver retries it like a dropped connection, and it never
reaches a user as itself (repeated outages become a document's recorded failure).
"""

from __future__ import annotations

import re
from typing import ClassVar

URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>)]+", re.IGNORECASE)


def without_urls(text: str) -> str:
    """`text` with every URL in it replaced by `<runtime>`: how the gateway tells a caller about
    its runtime (an address on the operator's network stays in the gateway's own log)."""
    return URL.sub("<runtime>", text)


class ForkpointError(Exception):
    """Base class. `hint` says what to do; `retryable` says whether trying again may help."""

    retryable: ClassVar[bool] = False
    http_status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    @property
    def kind(self) -> str:
        return type(self).__name__

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class _Invalid(ForkpointError):
    """Something the user gave that cannot work as given: 422, exit 2."""

    http_status = 422
    exit_code = 2


class SchemaError(_Invalid):
    """A Pydantic model or JSON schema that cannot become a decoding constraint."""


class TaskError(_Invalid):
    """An extraction task that is unknown, cannot be loaded, or is inconsistent."""


class DocumentError(_Invalid):
    """One document that cannot be read or extracted. Never fatal for a batch."""


class OutputError(_Invalid):
    """The model's output for one document did not validate (or was truncated)."""


class ProfileError(_Invalid):
    """A launch profile that is unknown or invalid."""


class RequestError(_Invalid):
    """A gateway request that is malformed: invalid JSON, missing or wrong fields."""


class TooLarge(ForkpointError):
    """A request over one of the gateway's size limits (body bytes, documents per job)."""

    http_status = 413
    exit_code = 2


class RuntimeUnavailable(ForkpointError):
    """The SGLang runtime (or the gateway in front of it) could not be started or reached."""

    retryable = True
    http_status = 503
    exit_code = 3


class RuntimeTimeout(ForkpointError):
    """The runtime did not finish within the gateway's deadline (a synchronous extraction past
    FORKPOINT_EXTRACT_TIMEOUT_SECONDS): hung, or busier than the deadline allows."""

    retryable = True
    http_status = 504
    exit_code = 3


class QueueFull(ForkpointError):
    """More documents are waiting than the gateway accepts; retry later."""

    retryable = True
    http_status = 429
    exit_code = 3


class IdempotencyConflict(ForkpointError):
    """An idempotency key was reused for a different request."""

    http_status = 409


class Conflict(ForkpointError):
    """The request does not fit the state of what it names (e.g. cancelling a finished batch)."""

    http_status = 409


class NotFound(ForkpointError):
    """No such job (or no such thing of a job, e.g. its labels)."""

    http_status = 404


class Unauthorized(ForkpointError):
    """A gateway request without a valid API key (the gateway adds `WWW-Authenticate`), or any
    request while the configured key source holds no key at all."""

    http_status = 401


class KeysUnavailable(ForkpointError):
    """The gateway cannot read its API key file (deleted, a directory, no permission), so it
    cannot tell a valid key from any other and refuses every request: 503, never open.

    Retryable, like RuntimeUnavailable: the usual cause is a rotation that removes the file
    before writing the new one, which heals within seconds, and a retry after Retry-After is
    harmless when it does not (the operator's log says which file and why)."""

    retryable = True
    http_status = 503
    exit_code = 3


def error_class(kind: object) -> type[ForkpointError] | None:
    """The ForkpointError class named `kind` (a body's "kind"), or None for any other value."""
    found = globals().get(kind) if isinstance(kind, str) and not kind.startswith("_") else None
    return found if isinstance(found, type) and issubclass(found, ForkpointError) else None
