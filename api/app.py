"""The FastAPI gateway: routes parse, call one function, and format."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError

from forkpoint.api import errors
from forkpoint.api.auth import check_key
from forkpoint.api.jobs import JobRunner, task_for
from forkpoint.api.metrics import Metrics
from forkpoint.api.schemas import (
    ExtractRequest,
    ExtractResponse,
    JobRequest,
    JobStatus,
    ProgramRun,
    SchemaCheck,
    SchemaCheckResult,
    TaskChoice,
    TaskInfo,
)
from forkpoint.api.settings import Settings
from forkpoint.api.store import FINAL_STATES, JobStore
from forkpoint.programs.constraints import Constraint
from forkpoint.programs.documents import Document, decode, from_text
from forkpoint.programs.errors import DocumentError, RuntimeUnavailable
from forkpoint.programs.eval_report import report
from forkpoint.programs.evaluation import Evaluation, Label, check_labels
from forkpoint.programs.registry import builtin_tasks
from forkpoint.programs.results import BatchSummary, DocumentResult, Usage


def create_app(settings: Settings | None = None, *, start_workers: bool = True) -> FastAPI:
    """The gateway. `start_workers=False` accepts and stores jobs without running them."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = JobStore(settings.db_path)
        runner = JobRunner(store, settings, Metrics())
        app.state.settings, app.state.store, app.state.runner = settings, store, runner
        if start_workers:
            runner.start()
        yield
        runner.stop()
        store.close()

    app = FastAPI(title="forkpoint gateway", version="1", lifespan=lifespan)
    errors.install(app)

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length and int(length) > settings.max_body_bytes:
            return JSONResponse(
                {"error": f"body of {length} bytes exceeds the {settings.max_body_bytes} limit"},
                status_code=413,
            )
        return await call_next(request)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz(request: Request) -> JSONResponse:
        url = request.app.state.runner.url
        try:
            ok = httpx.get(f"{url}/health", timeout=5).status_code == 200
        except httpx.HTTPError:
            ok = False
        return JSONResponse({"runtime": url, "ready": ok}, status_code=200 if ok else 503)

    @app.get("/metrics")
    def metrics(request: Request) -> Response:
        runner: JobRunner = request.app.state.runner
        return Response(runner.metrics.render(runner.url), media_type="text/plain; version=0.0.4")

    app.include_router(v1)
    return app


def _authorized(request: Request) -> None:
    check_key(request, request.app.state.settings)


def _runner(request: Request) -> JobRunner:
    return request.app.state.runner


RunnerDep = Annotated[JobRunner, Depends(_runner)]
v1 = APIRouter(prefix="/v1", dependencies=[Depends(_authorized)])


def _task(choice: TaskChoice):
    schema = json.dumps(choice.json_schema) if choice.json_schema is not None else None
    return task_for(choice.task, schema, choice.instructions), schema


def _checked(runner: JobRunner, documents: list[Document]) -> list[Document]:
    limits = runner.settings
    if len(documents) > limits.max_documents_per_job:
        raise HTTPException(413, f"{len(documents)} documents; the limit per job is "
                                 f"{limits.max_documents_per_job}")  # fmt: skip
    for doc in documents:
        if doc.text is not None and len(doc.text) > limits.max_document_chars:
            raise DocumentError(
                f"{doc.name} has {len(doc.text)} characters; the limit is "
                f"{limits.max_document_chars}",
                hint="split it, or raise FORKPOINT_MAX_DOCUMENT_CHARS",
            )
    return documents


async def _extract(runner: JobRunner, task, doc: Document) -> dict[str, Any]:
    _checked(runner, [doc])

    def run() -> dict[str, Any]:
        result = runner.driver(task).extract_one(0, doc)
        runner.metrics.observe(result)
        return result.to_json()

    try:
        return await asyncio.wait_for(
            run_in_threadpool(run), timeout=runner.settings.extract_timeout_seconds
        )
    except TimeoutError as exc:
        raise RuntimeUnavailable("the extraction did not finish within the timeout") from exc


@v1.post("/extract", response_model=ExtractResponse)
async def extract(body: ExtractRequest, runner: RunnerDep) -> dict[str, Any]:
    """One document, synchronously: the validated object (or the reason) and its usage."""
    task, _ = _task(body)
    return await _extract(runner, task, from_text(body.name, body.document))


@v1.get("/tasks", response_model=list[TaskInfo])
def tasks() -> list[dict[str, Any]]:
    return [
        {"name": t.name, "description": t.description, "schema": t.constraint.schema,
         "examples": len(t.examples), "max_output_tokens": t.max_output_tokens}
        for t in builtin_tasks().values()
    ]  # fmt: skip


@v1.get("/programs", response_model=list[TaskInfo])
def programs() -> list[dict[str, Any]]:
    """The registered SGLang programs: one extraction program per registered task."""
    return tasks()


@v1.post("/programs/{name}/runs", response_model=ExtractResponse)
async def run_program(name: str, body: ProgramRun, runner: RunnerDep) -> dict[str, Any]:
    """Run program `name` with arguments {"document": text}."""
    if set(body.arguments) != {"document"}:
        raise HTTPException(422, "a program run takes exactly one argument: 'document'")
    task, _ = _task(TaskChoice(task=name))
    return await _extract(runner, task, from_text(name, body.arguments["document"]))


@v1.post("/schemas/check", response_model=SchemaCheckResult)
def check_schema(body: SchemaCheck) -> dict[str, Any]:
    """Compile an inline schema with xgrammar: 200 with warnings, or 422 with the reason."""
    constraint = Constraint.from_schema(body.schema_)
    return {"key": constraint.key, "warnings": constraint.warnings}


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
async def submit_job(request: Request, runner: RunnerDep) -> dict[str, Any]:
    """A batch job: task or schema, plus documents as inline JSON or multipart files."""
    choice, documents = await _job_input(request)
    task, schema = _task(choice)
    labels = None
    if isinstance(choice, JobRequest) and choice.labels:
        checked = check_labels([label.model_dump() for label in choice.labels],
                               {doc.name for doc in documents}, task, where="labels")  # fmt: skip
        labels = {label.document: label.expected for label in checked}
    job = await run_in_threadpool(
        runner.submit, task, _checked(runner, documents), schema_json=schema,
        instructions=choice.instructions, labels=labels,
    )  # fmt: skip
    return _status(runner.store, job.id)


async def _job_input(request: Request) -> tuple[TaskChoice, list[Document]]:
    try:
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await request.form()
            schema = form.get("schema")
            choice = TaskChoice(
                task=form.get("task"),
                schema=json.loads(schema) if isinstance(schema, str) else None,
                instructions=form.get("instructions"),
            )
            files = [f for f in form.getlist("files") if hasattr(f, "read")]
            documents = [
                decode(f.filename or f"file-{i}", await f.read()) for i, f in enumerate(files)
            ]
            if not documents:
                raise HTTPException(422, "a multipart job needs at least one 'files' part")
            return choice, documents
        body = JobRequest.model_validate_json(await request.body())
        return body, [from_text(d.name, d.text) for d in body.documents]
    except (ValidationError, json.JSONDecodeError) as exc:
        raise HTTPException(422, f"invalid job request: {exc}") from None


@v1.get("/jobs", response_model=list[JobStatus])
def list_jobs(runner: RunnerDep) -> list[dict[str, Any]]:
    return [_status(runner.store, job.id) for job in runner.store.jobs()]


@v1.get("/jobs/{job_id}", response_model=JobStatus)
def job_status(job_id: str, runner: RunnerDep) -> dict[str, Any]:
    return _status(runner.store, job_id)


@v1.delete("/jobs/{job_id}", response_model=JobStatus)
def cancel_job(job_id: str, runner: RunnerDep) -> dict[str, Any]:
    _status(runner.store, job_id)
    runner.cancel(job_id)
    return _status(runner.store, job_id)


@v1.get("/jobs/{job_id}/results")
async def job_results(job_id: str, runner: RunnerDep, wait: bool = True) -> StreamingResponse:
    """NDJSON in document order; streams while the job runs (unless wait=false)."""
    _status(runner.store, job_id)
    deadline = time.monotonic() + runner.settings.results_wait_seconds

    async def lines() -> AsyncIterator[bytes]:
        sent = 0
        while True:
            batch = await run_in_threadpool(runner.store.results, job_id, sent)
            for record in batch:
                yield (json.dumps(record, ensure_ascii=False) + "\n").encode()
            sent += len(batch)
            job = runner.store.job(job_id)
            finished = job.state in FINAL_STATES and not batch
            if sent >= job.total or finished or not wait or time.monotonic() > deadline:
                return
            await asyncio.sleep(0.5)

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@v1.get("/jobs/{job_id}/eval")
def job_eval(job_id: str, runner: RunnerDep) -> dict[str, Any]:
    """For a job submitted with labels: per-field accuracy over the documents done so far."""
    status = _status(runner.store, job_id)
    labels = runner.store.labels(job_id)
    if not labels:
        raise HTTPException(404, f"job {job_id} was submitted without labels")
    job = runner.store.job(job_id)
    task = task_for(job.task, job.schema_json, job.instructions)
    pairs = [(r, labels[r["file"]]) for r in runner.store.results(job_id) if r["file"] in labels]
    summary = BatchSummary()
    results = []
    for position, (record, _) in enumerate(pairs):
        usage = Usage.from_meta(record["usage"])
        data, error = record.get("data"), record.get("error")
        result = DocumentResult(position, record["file"], record["status"], data, error, usage)
        summary.add(result)
        results.append(result)
    summary.wall_seconds = status["elapsed_seconds"]
    evaluated = Evaluation(task, [Label(r["file"], e) for r, e in pairs], results, summary)
    return {"complete": job.state == "done", "labelled": len(labels), **report(evaluated)}


def _status(store: JobStore, job_id: str) -> dict[str, Any]:
    job = store.job(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    counts = store.counts(job_id)
    elapsed = (job.finished or time.time()) - job.created
    return {
        "id": job.id, "task": job.task, "state": job.state, "total": job.total,
        "done": counts.done, "failed": counts.failed, "prompt_tokens": counts.prompt_tokens,
        "cached_tokens": counts.cached_tokens, "completion_tokens": counts.completion_tokens,
        "elapsed_seconds": round(elapsed, 3),
        "read_tokens_per_second": round(counts.prompt_tokens / elapsed, 1) if elapsed else 0.0,
        "write_tokens_per_second": round(counts.completion_tokens / elapsed, 1) if elapsed else 0.0,
    }  # fmt: skip
