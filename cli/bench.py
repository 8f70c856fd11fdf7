"""`forkpoint bench ...`: the 1M-token benchmark (forkpoint.perf.bench.bench), flags passed on."""

from __future__ import annotations

import typer

from forkpoint.cli.errors import reported


def bench(ctx: typer.Context) -> None:
    """Run the 1M-token benchmark (see `forkpoint bench --help-bench` for its flags)."""
    from forkpoint.perf.bench.bench import main

    with reported():
        main(["--help" if a == "--help-bench" else a for a in ctx.args])
