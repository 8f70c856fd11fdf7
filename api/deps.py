"""What the /v1 routes share: the caller, the runner, task choice and the input limits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from forkpoint.api.auth import Caller
from forkpoint.api.jobs import JobRunner, task_for
from forkpoint.api.schemas import TaskChoice
from forkpoint.api.store import JobRecord, JobStore
from forkpoint.programs.documents.document import Document
from forkpoint.programs.errors import DocumentError, NotFound, RuntimeUnavailable, TooLarge

T = TypeVar("T")

# Parsing uploads (pypdf, python-docx, BeautifulSoup) and compiling schemas (jsonschema,
# xgrammar) take seconds on a large input: never on the event loop (the key check, /healthz and
# every other request would wait), and at most this many at once (each can hold a large input).
PARSERS = anyio.CapacityLimiter(4)


async def offload(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` in a worker thread, bounded by PARSERS; the event loop stays free."""
    return await anyio.to_thread.run_sync(function, *args, limiter=PARSERS)


def authorized(request: Request) -> Caller:
    """Every /v1 route's dependency: the caller the door (api/door.py) authenticated before the
    body was read, or 401/503 (api/auth.py) if no door ran. FastAPI runs it once per request,
    however many routes' parameters ask for `CallerDep` too."""
    caller = getattr(request.state, "caller", None)
    return caller if caller is not None else request.app.state.gate.caller(request)


def runner_of(request: Request) -> JobRunner:
    return request.app.state.runner


RunnerDep = Annotated[JobRunner, Depends(runner_of)]
CallerDep = Annotated[Caller, Depends(authorized)]


def visible_job(store: JobStore, job_id: str, caller: Caller) -> JobRecord:
    """The job, if the caller may see it; else the same NotFound as for a job that does not
    exist, so another key cannot learn that it does."""
    job = store.job(job_id)
    if job is None or not caller.may_see(job.owner):
        raise NotFound(f"no job {job_id}")
    return job


def v1_router() -> APIRouter:
    return APIRouter(prefix="/v1", dependencies=[Depends(authorized)])


def choose(choice: TaskChoice):
    schema = json.dumps(choice.json_schema) if choice.json_schema is not None else None
    return task_for(choice.task, schema, choice.instructions), schema


def checked(runner: JobRunner, documents: list[Document]) -> list[Document]:
    limits = runner.settings
    if len(documents) > limits.max_documents_per_job:
        raise TooLarge(
            f"{len(documents)} documents; the limit per job is {limits.max_documents_per_job}",
            hint="split the job, or raise FORKPOINT_MAX_DOCUMENTS_PER_JOB",
        )
    for doc in documents:
        if doc.text is not None and len(doc.text) > limits.max_document_chars:
            raise DocumentError(
                f"{doc.name} has {len(doc.text)} characters; the limit is "
                f"{limits.max_document_chars}",
                hint="split it, or raise FORKPOINT_MAX_DOCUMENT_CHARS",
            )
    return documents


async def extract_now(runner: JobRunner, task, doc: Document) -> dict[str, Any]:
    checked(runner, [doc])

    def run() -> dict[str, Any]:
        result = runner.extractor(task).extract(0, doc)
        runner.metrics.observe(result)
        return result.to_json()

    try:
        return await asyncio.wait_for(
            run_in_threadpool(run), timeout=runner.settings.extract_timeout_seconds
        )
    except TimeoutError as exc:
        raise RuntimeUnavailable("the extraction did not finish within the timeout") from exc
