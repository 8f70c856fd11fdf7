"""`forkpoint extract`: a folder of documents → one validated JSON line per document."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
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
    progress,
    runtime_target,
)
from forkpoint.programs.documents.document import folder_files
from forkpoint.programs.results.file import ResultsFile
from forkpoint.programs.results.record import BatchSummary
from forkpoint.programs.results.table import check_format
from forkpoint.programs.results.table import write as write_table

if TYPE_CHECKING:
    from forkpoint.programs.target import Target
    from forkpoint.programs.tasks.task import ExtractionTask


def extract(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="Folder of documents.")],
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
    json_field: Annotated[
        str | None, typer.Option(help="For .json/.jsonl files: the (dotted) field with the text.")
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(help="Keep OUT's finished documents (same content hash); extract the rest."),
    ] = False,
    table_format: Annotated[
        str | None,
        typer.Option(
            "--format", help="Also write the results as a table beside OUT: csv or parquet."
        ),
    ] = None,
) -> None:
    """Extract every document of FOLDER (text, Markdown, HTML, PDF, Word, JSON/JSONL) with one
    task; write JSONL and print a summary."""
    with reported():
        if table_format:
            check_format(table_format)  # before the run: Parquet without pyarrow fails now
        if server:
            from forkpoint.cli.remote import refuse_local_options, run_remote

            refuse_local_options(_given(ctx, LOCAL_ONLY))
            files = [] if job else folder_files(folder)
            results = ResultsFile(out, resume=resume)
            chosen_remote = choose_task(task, task_module) if task_module else task
            summary = run_remote(
                server, api_key, chosen_remote, files, results, job, json_field=json_field
            )
            _print_summary(summary, out)
            _write_table(out, table_format)
            raise typer.Exit(EXIT_DOCUMENTS_FAILED if fail_on_error and summary.failed else 0)
        from forkpoint.runtime.profiles import get_profile

        chosen = choose_task(task, task_module)
        launch = get_profile(profile)
        files = folder_files(folder)
        results = ResultsFile(out, resume=resume)
        with runtime_target(launch, sglang_url, chat_format) as target:
            summary = _run(
                target,
                chosen,
                files,
                results,
                concurrency or launch.client_concurrency,
                json_field,
            )
    _print_summary(summary, out)
    with reported():
        _write_table(out, table_format)
    if fail_on_error and summary.failed:
        raise typer.Exit(EXIT_DOCUMENTS_FAILED)


LOCAL_ONLY = {
    "profile": "--profile",
    "sglang_url": "--sglang-url",
    "chat_format": "--chat-format",
    "concurrency": "--concurrency",
}


def _given(ctx: typer.Context, options: dict[str, str]) -> list[str]:
    """The options set on the command line. One set in the environment (FORKPOINT_PROFILE, say)
    is a standing default for local runs, not a request for this one: noted, not refused."""
    given = []
    for name, flag in options.items():
        # By name: typer ships its own copy of click, so its ParameterSource is not click's.
        source = getattr(ctx.get_parameter_source(name), "name", None)
        if source == "COMMANDLINE":
            given.append(flag)
        elif source == "ENVIRONMENT":
            console.print(f"[dim]note: {flag} from the environment does not apply with --server[/]")
    return given


def _run(
    target: Target,
    task: ExtractionTask,
    files: list[Path],
    results: ResultsFile,
    concurrency: int,
    json_field: str | None,
) -> BatchSummary:
    # Imported here: the SGLang frontend pulls in torch, which `forkpoint --help` must not pay.
    from forkpoint.programs.batch import BatchDriver, BatchOptions
    from forkpoint.programs.folder_run import extract_files

    driver = BatchDriver(target, task, BatchOptions(concurrency=concurrency))
    total = None if any(p.suffix.lower() == ".jsonl" for p in files) else len(files)
    with progress() as shown:
        bar = shown.add_task(f"{task.name}", total=total, status="")

        def tick(summary: BatchSummary) -> None:
            status = f"ok {summary.ok} failed {summary.failed} already done {summary.skipped}"
            shown.update(bar, completed=summary.total + summary.skipped, status=status)

        return extract_files(driver, files, results, json_field=json_field, on_progress=tick)


def _write_table(out: Path, fmt: str | None) -> None:
    """OUT (the results file, which resumes) as a table beside it: OUT with the format's suffix."""
    if fmt is None:
        return
    with out.open(encoding="utf-8") as lines:
        records = [json.loads(line) for line in lines if line.strip()]
    table = out.with_suffix(f".{fmt}")
    count = write_table(records, table, fmt)
    console.print(f"{count} rows → {table}")


def _print_summary(summary: BatchSummary, out: Path) -> None:
    table = Table(title=f"forkpoint extract → {out}", show_header=False)
    figures = summary.to_json()
    for key, value in figures.items():
        table.add_row(key.replace("_", " "), f"{value:,}" if isinstance(value, int) else str(value))
    Console().print(table)
