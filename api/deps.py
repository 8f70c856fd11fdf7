"""What the /v1 routes share: the caller, the runner, task choice, the input limits and the
bounded slots of synchronous extractions."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from typing import Annotated, Any, NamedTuple, TypeVar

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends, Request

from forkpoint.api.auth import Caller
from forkpoint.api.job_task import JobTask
from forkpoint.api.jobs import JobRunner
from forkpoint.api.schemas import TaskChoice
from forkpoint.api.store import JobRecord, JobStore
from forkpoint.errors import (
    DocumentError,
    NotFound,
    RuntimeTimeout,
    RuntimeUnavailable,
    TooLarge,
)
from forkpoint.programs.documents.document import Document
from forkpoint.programs.tasks.task import ExtractionTask

T = TypeVar("T")

# Parsing uploads (pypdf, python-docx, BeautifulSoup) and compiling schemas (jsonschema,
# xgrammar) take seconds on a large input: never on the event loop (the key check, /healthz and
# every other request would wait), and at most this many at once (each can hold a large input).
PARSERS = anyio.CapacityLimiter(4)

# A synchronous extraction (/v1/extract, program runs) holds a thread until the runtime answers.
# They get threads of their own, at most this many: a hung runtime fills them and further
# extractions are refused with 503, while the key check, /healthz and the sync routes keep
# anyio's threadpool. A constant, not a setting: jobs (POST /v1/jobs) are the way to more.
EXTRACT_SLOTS = 8


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


class Chosen(NamedTuple):
    """The task a request names, and how a job records it (so that a restarted gateway builds
    the same task again)."""

    task: ExtractionTask
    record: JobTask


def choose(choice: TaskChoice) -> Chosen:
    """Build (and compile) the task a request names; SchemaError/TaskError if it is bad."""
    if choice.task_definition is not None:
        record = JobTask(definition=choice.task_definition)
    elif choice.json_schema is not None:
        record = JobTask.inline(choice.json_schema, choice.instructions)
    else:
        record = JobTask.named(choice.task or "")
    return Chosen(record.to_task(), record)


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


class Extractions:
    """The gateway's synchronous extractions: at most `slots` at once, each in a daemon thread of
    its own, each answered within the runner's `extract_timeout_seconds`.

    A slot is held until its thread ends, not until its request is answered: a request past its
    deadline is answered 504 and its thread abandoned (a thread cannot be cancelled), and that
    thread ends on its own because none of its runtime calls waits longer than the deadline. A
    request that finds every slot taken is answered 503 at once, never queued behind a runtime
    that may be hung."""

    def __init__(self, runner: JobRunner, slots: int = EXTRACT_SLOTS) -> None:
        self.runner, self.slots = runner, slots
        self.seconds = runner.settings.extract_timeout_seconds
        self._free = threading.BoundedSemaphore(slots)

    async def extract(self, task: ExtractionTask, doc: Document) -> dict[str, Any]:
        """One document's result; 503 when every slot is taken, 504 past the deadline."""
        checked(self.runner, [doc])
        return await self._run(lambda: self._extract(task, doc))

    def _extract(self, task: ExtractionTask, doc: Document) -> dict[str, Any]:
        # The runner's pool: the task's extractor, seen with timeouts within the deadline.
        extractors = self.runner.extractors
        try:
            result = extractors.bounded(task, self.seconds).extract(0, doc)
        except Exception:  # e.g. the runtime restarted, maybe with another model: ask again
            extractors.drop(task)
            self.runner.target.forget()
            raise
        self.runner.metrics.observe(result)
        return result.to_json()

    async def _run(self, function: Callable[[], T]) -> T:
        if not self._free.acquire(blocking=False):
            raise RuntimeUnavailable(
                f"all {self.slots} synchronous extractions are waiting for the runtime",
                hint="retry later, or submit the documents as a job (POST /v1/jobs)",
            )
        done: concurrent.futures.Future[T] = concurrent.futures.Future()
        done.set_running_or_notify_cancel()  # an abandoned wait cannot cancel it under the thread

        def work() -> None:
            try:
                done.set_result(function())
            except BaseException as exc:
                done.set_exception(exc)
            finally:
                self._free.release()

        try:
            threading.Thread(target=work, name="fp-extract", daemon=True).start()
        except BaseException:
            self._free.release()
            raise
        try:
            return await asyncio.wait_for(asyncio.wrap_future(done), self.seconds)
        except TimeoutError as exc:
            raise RuntimeTimeout(
                f"the runtime did not finish the extraction within {self.seconds:g} seconds",
                hint="retry later, raise FORKPOINT_EXTRACT_TIMEOUT_SECONDS, or submit the "
                "document as a job (POST /v1/jobs)",
            ) from exc


async def extractions_of(request: Request) -> Extractions:
    """The app's synchronous extractions, made on first use (async: on the event loop, so once)."""
    state = request.app.state
    if getattr(state, "extractions", None) is None:
        state.extractions = Extractions(state.runner)
    return state.extractions


ExtractionsDep = Annotated[Extractions, Depends(extractions_of)]
