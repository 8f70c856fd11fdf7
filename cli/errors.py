"""ForkpointError → CLI message and exit code (the error's own `exit_code`, core/errors.py).

0 success; 1 any other forkpoint error; 2 bad input (schema, task, document, profile,
request); 3 the runtime or gateway unreachable or full; 4 (`--fail-on-error`) documents failed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from forkpoint.errors import ForkpointError

EXIT_DOCUMENTS_FAILED = 4  # with --fail-on-error, when any document did not succeed

stderr = Console(stderr=True)


@contextmanager
def reported() -> Iterator[None]:
    """Turn a ForkpointError into a red message (plus hint) and its exit code."""
    try:
        yield
    except ForkpointError as error:
        stderr.print(f"[bold red]error:[/] {error.message}", highlight=False, soft_wrap=True)
        if error.hint:
            stderr.print(f"[dim]hint: {error.hint}[/]", highlight=False, soft_wrap=True)
        raise typer.Exit(error.exit_code) from None
