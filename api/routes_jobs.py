"""Batch jobs: submit, follow, stream results in order, cancel, evaluate."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from forkpoint.api.auth import Caller
from forkpoint.api.deps import (
    CallerDep,
    RunnerDep,
    checked,
    choose,
    offload,
    v1_router,
    visible_job,
)
from forkpoint.api.schemas import JobRequest, JobStatus, TaskChoice
from forkpoint.api.store import FINAL_STATES, JobStore
from forkpoint.errors import NotFound, RequestError, TooLarge
from forkpoint.programs.documents.document import Document, from_text, iter_bytes
from forkpoint.programs.evaluation.evaluate import Evaluation, Label, check_labels
from forkpoint.programs.evaluation.report import report
from forkpoint.programs.results.record import BatchSummary, DocumentResult

v1 = v1_router()


@v1.post(
    "/jobs",
    response_model=JobStatus,
    status_code=202,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": JobRequest.model_json_schema()},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "task": {"type": "string"},
                            "schema": {"type": "string", "description": "JSON text"},
                            "instructions": {"type": "string"},
                            "strict": {"type": "boolean"},
                            "task_definition": {
                                "type": "string",
                                "description": "JSON text: a whole task (see JobRequest)",
                            },
                            "json_field": {
                                "type": "string",
                                "description": "For .json/.jsonl files: the (dotted) text field",
                            },
                            "files": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                            },
                        },
                    }
                },
            },
            "required": True,
        }
    },
)
async def submit_job(
    request: Request,
    runner: RunnerDep,
    caller: CallerDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> dict[str, Any]:
    """A batch job: task or schema, plus documents as inline JSON or multipart files (PDF, Word,
    HTML, text, JSON/JSONL). The job belongs to the caller's API key. With an `Idempotency-Key`
    header, submitting the same request again with the same API key returns the job it created
    (200) instead of a new one, the same key with a different request is 409; keys expire after
    FORKPOINT_IDEMPOTENCY_TTL_SECONDS (a day)."""
    choice, documents = await _job_input(request)
    chosen = await offload(choose, choice)  # compiles an inline schema or task definition
    task = chosen.task
    labels = None
    if isinstance(choice, JobRequest) and choice.labels:
        records = [label.model_dump() for label in choice.labels]
        names = {doc.name for doc in documents}
        valid = await offload(lambda: check_labels(records, names, task, where="labels"))
        labels = {label.document: label.expected for label in valid}
    job, created = await run_in_threadpool(
        runner.submit,
        chosen.record,
        checked(runner, documents),
        labels=labels,
        idempotency_key=idempotency_key,
        owner=caller.owner,
    )
    if not created:
        response.status_code = 200
    return await run_in_threadpool(_status, runner.store, job.id, caller)


def _read_uploads(
    uploads: list[tuple[str, bytes]],
    json_field: str | None,
    *,
    max_documents: int,
    max_chars: int | None = None,
) -> list[Document]:
    """Every uploaded file's documents (a JSONL file holds many), in upload order. Read lazily
    and refused (TooLarge) the moment document max_documents + 1 appears, error documents
    included, so a file of millions of tiny lines is never turned into millions of Documents.
    `max_chars`: a PDF past it becomes an error document, extracted no further."""
    documents: list[Document] = []
    for name, data in uploads:
        for doc in iter_bytes(name, data, json_field=json_field, max_chars=max_chars):
            if len(documents) == max_documents:
                raise TooLarge(
                    f"more than {max_documents} documents (reading stopped in {name}); "
                    f"the limit per job is {max_documents}",
                    hint="split the job, or raise FORKPOINT_MAX_DOCUMENTS_PER_JOB",
                )
            documents.append(doc)
    return documents


async def _job_input(request: Request) -> tuple[TaskChoice, list[Document]]:
    try:
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await request.form()
            schema, definition = form.get("schema"), form.get("task_definition")
            choice = TaskChoice(
                task=form.get("task"),
                schema=json.loads(schema) if isinstance(schema, str) else None,
                instructions=form.get("instructions"),
                task_definition=json.loads(definition) if isinstance(definition, str) else None,
                strict=form.get("strict") in ("true", "1"),
            )
            files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
            field = form.get("json_field")
            json_field = field if isinstance(field, str) and field else None
            uploads = [(f.filename or f"file-{i}", await f.read()) for i, f in enumerate(files)]
            limits = request.app.state.runner.settings
            documents = await offload(
                lambda: _read_uploads(
                    uploads,
                    json_field,
                    max_documents=limits.max_documents_per_job,
                    max_chars=limits.max_document_chars,
                )
            )
            if not documents:
                raise RequestError("a multipart job needs at least one 'files' part")
            return choice, documents
        body = await offload(JobRequest.model_validate_json, await request.body())
        return body, [from_text(d.name, d.text) for d in body.documents]
    except (ValidationError, json.JSONDecodeError) as exc:
        raise RequestError(f"invalid job request: {exc}") from None
    except RecursionError:  # json.loads of the 'schema' field: not a ValueError
        raise RequestError("invalid job request: 'schema' is nested too deeply to read") from None


@v1.get("/jobs", response_model=list[JobStatus])
def list_jobs(runner: RunnerDep, caller: CallerDep) -> list[dict[str, Any]]:
    """The caller's newest jobs (an admin key's: everyone's)."""
    jobs = runner.store.jobs(owner=caller.listing_owner)
    return [_status(runner.store, job.id, caller) for job in jobs]


@v1.get("/jobs/{job_id}", response_model=JobStatus)
def job_status(job_id: str, runner: RunnerDep, caller: CallerDep) -> dict[str, Any]:
    return _status(runner.store, job_id, caller)


@v1.delete("/jobs/{job_id}", response_model=JobStatus)
def cancel_job(job_id: str, runner: RunnerDep, caller: CallerDep) -> dict[str, Any]:
    _status(runner.store, job_id, caller)
    runner.cancel(job_id)
    return _status(runner.store, job_id, caller)


@v1.get("/jobs/{job_id}/results")
async def job_results(
    job_id: str,
    request: Request,
    runner: RunnerDep,
    caller: CallerDep,
    wait: bool = True,
    start: Annotated[
        int, Query(ge=0, le=10**9, description="The first document (0-based) to send.")
    ] = 0,
) -> StreamingResponse:
    """NDJSON in document order from document `start` on (a client whose connection dropped
    asks again from where it left); streams while the job runs (unless wait=false). At most
    FORKPOINT_MAX_RESULT_STREAMS streams are open at once: past it 429 with Retry-After."""
    page = 256  # results read per store call; a full page is followed by the next at once
    store = runner.store
    await run_in_threadpool(_status, store, job_id, caller)
    deadline = time.monotonic() + runner.settings.results_wait_seconds

    async def lines() -> AsyncIterator[bytes]:
        sent = start
        while True:
            batch = await run_in_threadpool(store.results, job_id, sent, page)
            if batch:
                yield "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in batch).encode()
            sent += len(batch)
            if len(batch) == page:
                continue
            job = await run_in_threadpool(store.get, job_id)
            finished = job.state in FINAL_STATES and not batch
            if sent >= job.total or finished or not wait or time.monotonic() > deadline:
                return
            await asyncio.sleep(0.5)

    return request.app.state.result_streams.stream(lines(), media_type="application/x-ndjson")


@v1.get("/jobs/{job_id}/eval")
def job_eval(job_id: str, runner: RunnerDep, caller: CallerDep) -> dict[str, Any]:
    """For a job submitted with labels: per-field accuracy over the documents done so far."""
    status = _status(runner.store, job_id, caller)
    labels = runner.store.labels(job_id)
    if not labels:
        raise NotFound(f"job {job_id} was submitted without labels")
    job = runner.store.get(job_id)
    task = job.task.to_task()
    pairs = [(r, labels[r["file"]]) for r in runner.store.results(job_id) if r["file"] in labels]
    summary = BatchSummary()
    results = []
    for position, (record, _) in enumerate(pairs):
        result = DocumentResult.from_json(record, position)
        summary.add(result)
        results.append(result)
    summary.wall_seconds = status["elapsed_seconds"]
    evaluated = Evaluation(task, [Label(r["file"], e) for r, e in pairs], results, summary)
    return {"complete": job.state == "done", "labelled": len(labels), **report(evaluated)}


def _status(store: JobStore, job_id: str, caller: Caller) -> dict[str, Any]:
    """The job's status, or NotFound if it does not exist or is not the caller's to see."""
    job = visible_job(store, job_id, caller)
    counts = store.counts(job_id)
    elapsed = (job.finished or time.time()) - job.created
    return {
        "id": job.id,
        "task": job.task.name,
        "state": job.state,
        "total": job.total,
        "done": counts.done,
        "failed": counts.failed,
        "prompt_tokens": counts.prompt_tokens,
        "cached_tokens": counts.cached_tokens,
        "completion_tokens": counts.completion_tokens,
        "elapsed_seconds": round(elapsed, 3),
        "read_tokens_per_second": round(counts.prompt_tokens / elapsed, 1) if elapsed else 0.0,
        "write_tokens_per_second": round(counts.completion_tokens / elapsed, 1) if elapsed else 0.0,
        "speculation_corpus": store.corpus(job_id),
    }
