"""`forkpoint extract --server URL`: send a folder to a gateway and stream its results."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, TextIO

from forkpoint.cli.options import console, progress
from forkpoint.errors import ProfileError
from forkpoint.programs.documents.document import content_hash, read_path
from forkpoint.programs.gateway_client import GatewayClient
from forkpoint.programs.remote import task_choice, validated
from forkpoint.programs.results.file import ResultsFile
from forkpoint.programs.results.record import BatchSummary, DocumentResult
from forkpoint.programs.tasks.task import ExtractionTask

RUNTIME_OPTIONS = ("--profile", "--sglang-url", "--chat-format", "--concurrency")


def refuse_local_options(given: list[str]) -> None:
    """Options that only mean something to a local run are an error with --server, not ignored."""
    runtime = [option for option in RUNTIME_OPTIONS if option in given]
    if runtime:
        raise ProfileError(
            f"{', '.join(runtime)} cannot be used with --server: the gateway runs its own"
            " runtime, profile and concurrency",
            hint="leave them out; the gateway's runtime is chosen where it starts"
            " (`forkpoint serve --profile NAME` or `--sglang-url URL`, FORKPOINT_CONCURRENCY)",
        )


def run_remote(
    server: str,
    api_key: str | None,
    task: str | ExtractionTask,
    files: list[Path],
    results: ResultsFile,
    job_id: str | None,
    *,
    json_field: str | None = None,
) -> BatchSummary:
    """Submit (or, with `job_id`, resume following) a job; write its results to `results`.

    The submission carries an idempotency key made from the task and the files' names and
    contents: running the same command again (after a dropped connection, say) follows the job
    the first run created instead of submitting the documents twice. With a resumed results
    file, only files holding a document that is not done yet are sent, and the done records are
    kept as they were. A task of the user's own (--task-module) travels as its definition;
    each answer is validated into its model here, validators included (`invalid` if one fails)."""
    client = GatewayClient(server, api_key)
    started = time.perf_counter()
    summary = BatchSummary()
    files, summary.skipped = _not_done(files, results, json_field)
    job = _job(client, task, files, job_id, json_field) if job_id or files else None
    if job is None:
        console.print(f"every document is already done in {results.path}: nothing sent")
    with results.open() as sink:  # after submitting: a refused job leaves OUT as it was
        if job is not None:
            _follow(client, server, job, task, results, sink, summary)
    results.compact()
    summary.wall_seconds = time.perf_counter() - started
    return summary


def _not_done(
    files: list[Path], results: ResultsFile, json_field: str | None
) -> tuple[list[Path], int]:
    """The files to send (those with any document not done) and the count of done documents
    in the files left out."""
    if not results.done:
        return files, 0
    send, skipped = [], 0
    for path in files:
        done = [results.is_done(doc) for doc in read_path(path, json_field=json_field)]
        if all(done):
            skipped += len(done)
        else:
            send.append(path)
    return send, skipped


def _job(
    client: GatewayClient,
    task: str | ExtractionTask,
    files: list[Path],
    job_id: str | None,
    json_field: str | None,
) -> dict[str, Any]:
    if job_id:
        return client.status(job_id)
    choice = task_choice(task)
    parts = [json.dumps(choice, sort_keys=True), json_field or ""] + [
        f"{path.name}:{content_hash(path.read_bytes())}" for path in files
    ]
    key = "forkpoint-cli-" + content_hash("\n".join(parts))
    return client.submit_files(choice, files, json_field=json_field, idempotency_key=key)


def _follow(
    client: GatewayClient,
    server: str,
    job: dict[str, Any],
    task: str | ExtractionTask,
    results: ResultsFile,
    sink: TextIO,
    summary: BatchSummary,
) -> None:
    console.print(f"job [bold]{job['id']}[/] on {server} (resume with --job {job['id']})")
    with progress() as shown:
        bar = shown.add_task(job["task"], total=job["total"], status="")
        for record in client.results(job["id"]):
            done = results.done.get(record["file"])
            if done is not None and done["sha256"] == record.get("sha256"):
                summary.skipped += 1  # a done document of a file sent again: keep its record
            else:
                result = validated(DocumentResult.from_json(record), task)
                sink.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
                sink.flush()  # every finished document is on disk before the next one
                summary.add(result)
            status = f"ok {summary.ok} failed {summary.failed} already done {summary.skipped}"
            shown.update(bar, advance=1, status=status)
