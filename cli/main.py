"""The `forkpoint` command. Commands parse, call one function, and format."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from forkpoint.cli import runtime
from forkpoint.cli.bench import bench
from forkpoint.cli.calibrate import calibrate
from forkpoint.cli.doctor import doctor, model_app
from forkpoint.cli.errors import reported
from forkpoint.cli.eval import eval_
from forkpoint.cli.extract import extract
from forkpoint.cli.review import review
from forkpoint.cli.serve import serve

app = typer.Typer(
    name="forkpoint",
    help="Structured extraction over thousands of documents on SGLang.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command()(extract)
app.command(name="eval")(eval_)
app.command()(review)
app.command()(serve)
app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(bench)
app.command()(calibrate)
app.add_typer(runtime.app, name="runtime", help="Launch profiles and the SGLang runtime.")
app.command()(doctor)
app.add_typer(model_app, name="model", help="Prepare and check model folders.")


@app.command()
def tasks() -> None:
    """List the built-in extraction tasks."""
    from forkpoint.programs.tasks.registry import builtin_tasks

    with reported():
        table = Table("task", "output model", "examples", "description")
        for task in builtin_tasks().values():
            model = task.output_model.__name__ if task.output_model else "(JSON schema)"
            table.add_row(task.name, model, str(len(task.examples)), task.description)
        Console().print(table)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
