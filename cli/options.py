"""What the commands that run a task share: their options, the task, and a runtime to run on."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from forkpoint.programs.tasks.registry import get_task, load_task
from forkpoint.programs.tasks.task import ExtractionTask

TaskOption = Annotated[str, typer.Option(help="Built-in task name (see `forkpoint tasks`).")]
TaskModuleOption = Annotated[
    str | None, typer.Option(help="Your own task: MODULE:NAME or path/file.py:NAME.")
]
ProfileOption = Annotated[
    str, typer.Option(envvar="FORKPOINT_PROFILE", help="Launch profile name or .toml path.")
]
SglangUrlOption = Annotated[
    str | None, typer.Option(envvar="FORKPOINT_SGLANG_URL", help="Use this running SGLang server.")
]
ChatFormatOption = Annotated[
    str | None, typer.Option(help="Prompt format; default: the profile's.")
]
ConcurrencyOption = Annotated[
    int | None, typer.Option(min=1, help="Documents in flight; default: the profile's.")
]

console = Console(stderr=True)


def choose_task(task: str, task_module: str | None) -> ExtractionTask:
    return load_task(task_module) if task_module else get_task(task)


def prompt_format(url: str, profile, sglang_url: str | None, chat_format: str | None) -> str:
    """--chat-format if given; else the profile's for the runtime this command started; else
    (--sglang-url) the served model's. Checked against the served model either way."""
    from forkpoint.programs.errors import RuntimeUnavailable
    from forkpoint.runtime.served_model import check_chat_format

    try:
        return check_chat_format(url, chat_format or (None if sglang_url else profile.chat_format))
    except RuntimeUnavailable as exc:
        hint = "start one with `forkpoint runtime up`, or omit --sglang-url" if sglang_url else None
        raise RuntimeUnavailable(exc.message, hint=hint or exc.hint) from exc


@contextmanager
def runtime_url(profile, sglang_url: str | None) -> Iterator[str]:
    """The given server's URL, or the URL of the profile's server started for this command."""
    if sglang_url:
        yield sglang_url
        return
    from forkpoint.runtime.launcher import RuntimeServer

    server = RuntimeServer(profile)
    console.print(f"starting the [bold]{profile.name}[/] runtime (log: {server.log_path})")
    started = time.monotonic()
    with server:
        console.print(f"runtime ready in {time.monotonic() - started:.0f} s at {server.url}")
        yield server.url


def progress() -> Progress:
    """The documents bar both ways of extracting show: done of total, a status line, time."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    )
    return Progress(*columns, console=console)
