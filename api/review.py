"""What the review page (api/ui/) reads and writes: a job's documents filtered by status and
sorted by lowest confidence, one document with its text, answer and review, the job's tokens
over time, and reviews saved beside the answers (api/corrections.py); and the same document
view as one self-contained HTML file, for results made without a gateway."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from forkpoint.api import corrections
from forkpoint.api.corrections import Review, ReviewRequest
from forkpoint.api.store import JobRecord, JobStore
from forkpoint.errors import DocumentError, NotFound
from forkpoint.programs.documents.document import read_folder
from forkpoint.programs.results.record import Status
from forkpoint.programs.tasks.spec import TaskSpec
from forkpoint.programs.tasks.task import ExtractionTask

UNSURE_BELOW = 0.6  # a value's confidence under this is marked unsure (the page uses the same)
MAX_PAGE = 500  # documents per listing page
TIMELINE_POINTS = 300  # at most this many points of tokens over time per answer
Order = Literal["index", "confidence"]


class DocumentSummary(BaseModel):
    index: int
    name: str
    status: Status
    confidence: float | None  # the lowest of its values' (None: the record has none)
    unsure: list[str]  # the values under UNSURE_BELOW, lowest first
    review: Literal["accepted", "corrected"] | None


class DocumentPage(BaseModel):
    total: int  # documents that match the filter
    counts: dict[str, int]  # recorded documents by status, whatever the filter
    documents: list[DocumentSummary]


class DocumentView(BaseModel):
    index: int
    name: str
    text: str
    task: str
    result: dict[str, Any] | None  # the recorded result as the results stream has it
    review: dict[str, Any] | None  # Review.to_json()


class Timeline(BaseModel):
    """Cumulative figures at each point: [seconds since the job was created, documents done,
    prompt tokens, completion tokens]."""

    state: str
    total: int
    points: list[tuple[float, int, int, int]]


def lowest_confidence(record: dict[str, Any]) -> float | None:
    confidence = record.get("confidence")
    if not isinstance(confidence, dict) or not confidence:
        return None
    return min(float(value) for value in confidence.values())


def unsure(record: dict[str, Any]) -> list[str]:
    confidence = record.get("confidence")
    if not isinstance(confidence, dict):
        return []
    low = [(float(p), path) for path, p in confidence.items() if float(p) < UNSURE_BELOW]
    return [path for _, path in sorted(low)]


def page(
    store: JobStore, job_id: str, status: Status | None, order: Order, start: int, limit: int
) -> DocumentPage:
    """The job's recorded documents with `status` (all if None), in document order or lowest
    confidence first (documents without confidence last, in document order)."""
    reviews = store.reviews(job_id)
    counts: dict[str, int] = {}
    rows = []
    for index, record in store.recorded(job_id):
        counts[record["status"]] = counts.get(record["status"], 0) + 1
        if status is not None and record["status"] != status:
            continue
        review = reviews.get(index)
        rows.append(
            DocumentSummary(
                index=index,
                name=record["file"],
                status=record["status"],
                confidence=lowest_confidence(record),
                unsure=unsure(record),
                review=None if review is None else review.action,
            )
        )
    if order == "confidence":
        rows.sort(key=lambda row: (row.confidence is None, row.confidence or 0.0, row.index))
    return DocumentPage(total=len(rows), counts=counts, documents=rows[start : start + limit])


def view(store: JobStore, job: JobRecord, index: int) -> DocumentView:
    document = store.document(job.id, index)
    if document is None:
        raise NotFound(f"job {job.id} has no document {index}")
    review = store.reviews(job.id).get(index)
    return DocumentView(
        index=index,
        name=document[0],
        text=document[1],
        task=job.task.name,
        result=store.result(job.id, index),
        review=None if review is None else review.to_json(),
    )


def timeline(store: JobStore, job: JobRecord) -> Timeline:
    """The job's tokens over time, from when each result was recorded; at most
    TIMELINE_POINTS points (evenly chosen, the last always kept)."""
    done, prompt, completion = 0, 0, 0
    points: list[tuple[float, int, int, int]] = [(0.0, 0, 0, 0)]
    for when, read, written in store.timeline(job.id):
        done, prompt, completion = done + 1, prompt + read, completion + written
        points.append((round(max(0.0, when - job.created), 3), done, prompt, completion))
    if len(points) > TIMELINE_POINTS:
        step = len(points) / (TIMELINE_POINTS - 1)
        points = [points[int(i * step)] for i in range(TIMELINE_POINTS - 1)] + [points[-1]]
    return Timeline(state=job.state, total=job.total, points=points)


def task_for(store: JobStore, job: JobRecord, index: int) -> ExtractionTask:
    """The task document `index` of `job` was extracted with (a grouped job's: its group's)."""
    if job.task.grouped is None:
        return job.task.to_task()
    parts = store.parts(job.id)
    part = parts[index] if index < len(parts) else None
    spec = None if part is None else store.group(job.id, part)
    if spec is None:
        raise NotFound(f"job {job.id} has no document {index}")
    return TaskSpec.model_validate_json(spec).to_task()


def save_review(store: JobStore, job: JobRecord, index: int, request: ReviewRequest) -> Review:
    """Check and record a review of document `index` (its result stays as it was)."""
    if store.document(job.id, index) is None:
        raise NotFound(f"job {job.id} has no document {index}")
    record = store.result(job.id, index)
    task = task_for(store, job, index) if request.action == "correct" else None
    review = corrections.decide(request, record, task, index)
    store.review(job.id, review)
    return review


def labels(store: JobStore, job_id: str) -> Iterator[str]:
    """The accepted and corrected documents as JSONL labels (api/corrections.py)."""
    reviews = store.reviews(job_id)
    names = store.names(job_id)
    documents = (
        (name, store.result(job_id, index) if index in reviews else None)
        for index, name in enumerate(names)
    )
    return corrections.label_lines(documents, reviews)


@cache
def asset(name: str) -> bytes:
    """One file of the review page (api/ui/, installed as package data)."""
    return files("forkpoint.api").joinpath("ui", name).read_bytes()


PLACEHOLDER = re.compile(r"\{\{([a-z.]+)\}\}")


def report_html(title: str, documents: list[dict[str, Any]]) -> str:
    """One HTML file that shows `documents` ({index, name, text, result, review} each, as
    GET /v1/jobs/{id}/documents/{index} answers) with the review page's own document view and
    stylesheet inlined: it opens anywhere, offline, with nothing to fetch."""
    # In a <script> element only "</" can end it early: JSON's "\u003c" is the same string.
    data = json.dumps({"title": title, "documents": documents}, ensure_ascii=False)
    parts = {
        "title": html.escape(title),
        "data": data.replace("<", "\\u003c"),
        **{name: asset(name).decode() for name in ("style.css", "document.js", "report.js")},
    }
    for name in ("document.js", "report.js"):
        if "</script" in parts[name].lower():
            raise ValueError(f"api/ui/{name} cannot be inlined: it contains '</script'")
    # one pass, so nothing inserted (a document's text) is ever read as a placeholder
    return PLACEHOLDER.sub(lambda m: parts[m.group(1)], asset("report.html").decode())


def folder_documents(
    results: Path, folder: Path, *, json_field: str | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """A results file's records (the last per document, as a resumed run leaves them) with
    their documents' texts from `folder`: what report_html shows, and notes on what did not
    match (a document missing from the folder, or changed since it was extracted)."""
    try:
        lines = results.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DocumentError(f"cannot read {results}: {exc.strerror or exc}") from None
    records: dict[str, dict[str, Any]] = {}
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash
        if isinstance(record, dict) and isinstance(record.get("file"), str):
            records[record["file"]] = record
    if not records:
        raise DocumentError(f"{results} holds no result records", hint="pass a results JSONL")
    texts = {doc.name: doc for doc in read_folder(folder, json_field=json_field)}
    documents, notes = [], []
    for index, (name, record) in enumerate(records.items()):
        doc = texts.get(name)
        if doc is None:
            notes.append(f"{name} is not in {folder}")
        elif record.get("sha256") and doc.sha256 and record["sha256"] != doc.sha256:
            notes.append(f"{name} changed since it was extracted: its spans may be off")
        text = "" if doc is None else doc.text or doc.error or ""
        documents.append(
            {"index": index, "name": name, "text": text, "result": record, "review": None}
        )
    return documents, notes
