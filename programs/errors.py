"""forkpoint's error hierarchy: what went wrong, and what to do about it.

Every error a user can cause or meet derives from `ForkpointError`. The CLI maps them to exit
codes in one place (cli/errors.py) and the gateway to HTTP statuses in one place (api/).
"""

from __future__ import annotations


class ForkpointError(Exception):
    """Base class. `hint` says what to do; `retryable` says whether trying again may help."""

    retryable: bool = False

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class SchemaError(ForkpointError):
    """A Pydantic model or JSON schema that cannot become a decoding constraint."""


class TaskError(ForkpointError):
    """An extraction task that is unknown, cannot be loaded, or is inconsistent."""


class DocumentError(ForkpointError):
    """One document that cannot be read or extracted. Never fatal for a batch."""


class OutputError(ForkpointError):
    """The model's output for one document did not validate (or was truncated)."""


class ProfileError(ForkpointError):
    """A launch profile that is unknown or invalid."""


class RuntimeUnavailable(ForkpointError):
    """The SGLang runtime could not be started or reached."""

    retryable = True
