"""`forkpoint extract --server URL`: send a folder to a gateway and stream its results."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from forkpoint.api.client import GatewayClient
from forkpoint.cli.options import console
from forkpoint.programs.documents import content_hash
from forkpoint.programs.results import BatchSummary, DocumentResult, Usage


def run_remote(
    server: str,
    api_key: str | None,
    task: str,
    files: list[Path],
    out: Path,
    job_id: str | None,
    *,
    json_field: str | None = None,
) -> BatchSummary:
    """Submit (or, with `job_id`, resume following) a job; write its results to `out`.

    The submission carries an idempotency key made from the task and the files' names and
    contents: running the same command again (after a dropped connection, say) follows the job
    the first run created instead of submitting the documents twice."""
    client = GatewayClient(server, api_key)
    started = time.perf_counter()
    if job_id:
        job = client.status(job_id)
    else:
        parts = [task, json_field or ""] + [
            f"{path.name}:{content_hash(path.read_bytes())}" for path in files
        ]
        key = "forkpoint-cli-" + content_hash("\n".join(parts))
        job = client.submit_files(task, files, json_field=json_field, idempotency_key=key)
    console.print(f"job [bold]{job['id']}[/] on {server} (resume with --job {job['id']})")
    summary = BatchSummary()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[status]}"), TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console) as progress, out.open("w") as sink:
        bar = progress.add_task(job["task"], total=job["total"], status="")
        for record in client.results(job["id"]):
            sink.write(json.dumps(record, ensure_ascii=False) + "\n")
            sink.flush()
            summary.add(_as_result(record))
            progress.update(bar, advance=1, status=f"ok {summary.ok} failed {summary.failed}")
    summary.wall_seconds = time.perf_counter() - started
    return summary


def _as_result(record: dict) -> DocumentResult:
    usage = record.get("usage", {})
    return DocumentResult(
        index=0, name=record["file"], status=record["status"], data=record.get("data"),
        error=record.get("error"), usage=Usage.from_meta(usage), seconds=usage.get("seconds", 0),
    )  # fmt: skip
