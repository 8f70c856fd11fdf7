"""What the commands that run a task share: their options, the task, and a runtime to run on."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from forkpoint.programs.tasks.registry import get_task, load_task
from forkpoint.programs.tasks.task import ExtractionTask

if TYPE_CHECKING:
    from forkpoint.programs.target import Target
    from forkpoint.runtime.profiles import LaunchProfile

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


@contextmanager
def runtime_target(
    profile: LaunchProfile, sglang_url: str | None, chat_format: str | None
) -> Iterator[Target]:
    """The given server, or the profile's started for this command, resolved (resolve_target):
    its chat format is --chat-format if given, else the profile's for the runtime this command
    started, else (--sglang-url) the served model's."""
    from forkpoint.programs.target import resolve_target

    if sglang_url:
        yield resolve_target(sglang_url, chat_format=chat_format)
        return
    from forkpoint.runtime.launcher import RuntimeServer

    server = RuntimeServer(profile)
    console.print(
        f"starting the [bold]{profile.name}[/] runtime (log: {server.log_path})", soft_wrap=True
    )
    started = time.monotonic()
    with server:
        console.print(f"runtime ready in {time.monotonic() - started:.0f} s at {server.url}")
        yield resolve_target(server.url, launched=profile, chat_format=chat_format)


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
