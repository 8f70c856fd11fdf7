"""The review page (/ui/, static files shipped in the package) and the /v1 routes it calls:
a job's documents, one document, reviews, labels and tokens over time (api/review.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse

from forkpoint.api import corrections, review
from forkpoint.api.deps import CallerDep, RunnerDep, offload, v1_router, visible_job
from forkpoint.errors import NotFound, TooLarge
from forkpoint.programs.results.record import Status

v1 = v1_router()
ui = APIRouter(include_in_schema=False)

Index = Annotated[int, Path(ge=0, le=10**9, description="The document's place in the job.")]
# The page's own files, nothing else: no path from a request reaches the file system.
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "document.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
# The page loads only its own files and calls only its own gateway (no CDN, no inline script).
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@ui.get("/ui")
def ui_root() -> RedirectResponse:
    return RedirectResponse("/ui/")


@ui.get("/ui/")
@ui.get("/ui/{name}")
def ui_file(name: str = "index.html") -> Response:
    """The review page: it asks for an API key and keeps it in the tab (sessionStorage)."""
    if name not in ASSETS:
        raise NotFound(f"no file {name[:100]!r} in the review page")
    return Response(review.asset(name), media_type=ASSETS[name], headers=HEADERS)


@v1.get("/jobs/{job_id}/documents", response_model=review.DocumentPage)
def job_documents(
    job_id: str,
    runner: RunnerDep,
    caller: CallerDep,
    status: Status | None = None,
    order: review.Order = "index",
    start: Annotated[int, Query(ge=0, le=10**9)] = 0,
    limit: Annotated[int, Query(ge=1, le=review.MAX_PAGE)] = 100,
) -> review.DocumentPage:
    """The job's recorded documents, filtered by `status`, in document order or lowest
    confidence first (`order=confidence`)."""
    visible_job(runner.store, job_id, caller)
    return review.page(runner.store, job_id, status, order, start, limit)


@v1.get("/jobs/{job_id}/documents/{index}", response_model=review.DocumentView)
def job_document(
    job_id: str, index: Index, runner: RunnerDep, caller: CallerDep
) -> review.DocumentView:
    """One document: its text, its result (answer, grounding spans, confidence, raw answer,
    reason) and its review."""
    return review.view(runner.store, visible_job(runner.store, job_id, caller), index)


@v1.put("/jobs/{job_id}/documents/{index}/review")
async def review_document(
    job_id: str, index: Index, request: Request, runner: RunnerDep, caller: CallerDep
) -> dict[str, Any]:
    """Accept the model's answer (`{"action": "accept"}`) or correct it (`{"action": "correct",
    "data": {...}}`: the whole right answer, checked against the task, 422 with the reason). The
    review is stored beside the answer, which stays as it was; a new review replaces the last."""
    job = await offload(visible_job, runner.store, job_id, caller)
    asked = corrections.read_request(await _body(request, corrections.MAX_CORRECTION_BYTES))
    saved = await offload(review.save_review, runner.store, job, index, asked)
    return saved.to_json()


@v1.delete("/jobs/{job_id}/documents/{index}/review", status_code=204)
def unreview_document(job_id: str, index: Index, runner: RunnerDep, caller: CallerDep) -> Response:
    """Forget a document's review (the answer was never changed)."""
    visible_job(runner.store, job_id, caller)
    if not runner.store.unreview(job_id, index):
        raise NotFound(f"document {index} of job {job_id} has no review")
    return Response(status_code=204)


@v1.get("/jobs/{job_id}/labels")
def job_labels(job_id: str, runner: RunnerDep, caller: CallerDep) -> StreamingResponse:
    """The accepted and corrected documents as the JSONL `forkpoint eval --labels` reads."""
    visible_job(runner.store, job_id, caller)
    lines = review.labels(runner.store, job_id)
    disposition = f'attachment; filename="labels-{job_id[:32]}.jsonl"'
    return StreamingResponse(
        lines, media_type="application/x-ndjson", headers={"Content-Disposition": disposition}
    )


@v1.get("/jobs/{job_id}/timeline", response_model=review.Timeline)
def job_timeline(job_id: str, runner: RunnerDep, caller: CallerDep) -> review.Timeline:
    """Documents done and tokens read and written, over the job's time so far."""
    return review.timeline(runner.store, visible_job(runner.store, job_id, caller))


async def _body(request: Request, limit: int) -> bytes:
    """The request's body, read no further than `limit` bytes (413 past it)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge(
                f"a body of more than {limit} bytes; the limit here is {limit}",
                hint="a review holds one document's answer",
            )
    return bytes(body)
