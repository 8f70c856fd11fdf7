"""`forkpoint extract`: a folder of documents → one validated JSON line per document."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from forkpoint.cli.errors import EXIT_DOCUMENTS_FAILED, reported
from forkpoint.cli.options import (
    ChatFormatOption,
    ConcurrencyOption,
    ProfileOption,
    SglangUrlOption,
    TaskModuleOption,
    TaskOption,
    choose_task,
    console,
    runtime_url,
)
from forkpoint.programs.documents import folder_files, read_text
from forkpoint.programs.results import BatchSummary


def extract(
    folder: Annotated[Path, typer.Argument(help="Folder of .txt/.md documents.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write JSONL.")] = Path(
        "results.jsonl"
    ),
    task: TaskOption = "invoices",
    task_module: TaskModuleOption = None,
    profile: ProfileOption = "cpu-small",
    sglang_url: SglangUrlOption = None,
    chat_format: ChatFormatOption = None,
    concurrency: ConcurrencyOption = None,
    server: Annotated[
        str | None,
        typer.Option(envvar="FORKPOINT_SERVER", help="Send the job to this forkpoint gateway."),
    ] = None,
    job: Annotated[str | None, typer.Option(help="With --server: follow this earlier job.")] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="FORKPOINT_API_KEY", help="The gateway's API key.")
    ] = None,
    fail_on_error: Annotated[
        bool, typer.Option(help=f"Exit {EXIT_DOCUMENTS_FAILED} if any document failed.")
    ] = False,
) -> None:
    """Extract every document of FOLDER with one task; write JSONL and print a summary."""
    with reported():
        if server:
            from forkpoint.cli.remote import run_remote

            files = [] if job else folder_files(folder)
            summary = run_remote(server, api_key, task, files, out, job)
            _print_summary(summary, out)
            raise typer.Exit(EXIT_DOCUMENTS_FAILED if fail_on_error and summary.failed else 0)
        from forkpoint.runtime.profiles import get_profile

        chosen = choose_task(task, task_module)
        launch = get_profile(profile)
        files = folder_files(folder)
        with runtime_url(launch, sglang_url) as url:
            summary = _run(
                url,
                chosen,
                chat_format or launch.chat_format,
                files,
                out,
                concurrency or launch.client_concurrency,
            )
    _print_summary(summary, out)
    if fail_on_error and summary.failed:
        raise typer.Exit(EXIT_DOCUMENTS_FAILED)


def _run(url, task, chat_format, files, out: Path, concurrency: int) -> BatchSummary:
    # Imported here: the SGLang frontend pulls in torch, which `forkpoint --help` must not pay.
    from forkpoint.programs.batch import BatchDriver, BatchOptions
    from forkpoint.programs.prompt import task_prompt

    prompt = task_prompt(task, chat_format)
    driver = BatchDriver(url, prompt, BatchOptions(concurrency=concurrency))
    summary = BatchSummary()
    summary.prefix_tokens = driver.warm()
    started = time.perf_counter()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress, out.open("w") as sink:
        bar = progress.add_task(f"{task.name}", total=len(files), status="")

        def tick(result) -> None:
            summary.add(result)
            progress.update(bar, advance=1, status=f"ok {summary.ok} failed {summary.failed}")

        documents = (read_text(path) for path in files)
        for result in driver.run(documents, on_result=tick):
            sink.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
            sink.flush()  # every finished document is on disk before the next one
    summary.wall_seconds = time.perf_counter() - started
    return summary


def _print_summary(summary: BatchSummary, out: Path) -> None:
    table = Table(title=f"forkpoint extract → {out}", show_header=False)
    figures = summary.to_json()
    for key, value in figures.items():
        table.add_row(key.replace("_", " "), f"{value:,}" if isinstance(value, int) else str(value))
    Console().print(table)
