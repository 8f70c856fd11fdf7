"""`forkpoint bench ...`: perf/bench.py of the source checkout, its flags passed through."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import typer

from forkpoint.cli.errors import reported
from forkpoint.programs.errors import ForkpointError


def bench(ctx: typer.Context) -> None:
    """Run the 1M-token benchmark (see `forkpoint bench --help-bench` for its flags)."""
    import forkpoint.programs

    script = Path(forkpoint.programs.__file__).resolve().parents[1] / "perf" / "bench.py"
    with reported():
        if not script.is_file():
            raise ForkpointError("the benchmark ships with the source checkout (perf/bench.py)")
    args = ["--help" if a == "--help-bench" else a for a in ctx.args]
    sys.argv = [str(script), *args]
    runpy.run_path(str(script), run_name="__main__")
