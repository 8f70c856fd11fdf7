"""ForkpointError → CLI exit code and message. The only place the CLI decides either."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from forkpoint.programs.errors import (
    DocumentError,
    ForkpointError,
    ProfileError,
    RuntimeUnavailable,
    SchemaError,
    TaskError,
)

EXIT_CODES: dict[type[ForkpointError], int] = {
    SchemaError: 2,
    TaskError: 2,
    DocumentError: 2,
    ProfileError: 2,
    RuntimeUnavailable: 3,
}
EXIT_DOCUMENTS_FAILED = 4  # with --fail-on-error, when any document did not succeed

stderr = Console(stderr=True)


def exit_code(error: ForkpointError) -> int:
    for kind in type(error).__mro__:
        if kind in EXIT_CODES:
            return EXIT_CODES[kind]
    return 1


@contextmanager
def reported() -> Iterator[None]:
    """Turn a ForkpointError into a red message (plus hint) and its exit code."""
    try:
        yield
    except ForkpointError as error:
        stderr.print(f"[bold red]error:[/] {error.message}", highlight=False, soft_wrap=True)
        if error.hint:
            stderr.print(f"[dim]hint: {error.hint}[/]", highlight=False, soft_wrap=True)
        raise typer.Exit(exit_code(error)) from None
