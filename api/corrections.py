"""Corrections: a reviewer's verdict on one document's answer, kept beside it, never over it.

A review is `accepted` (the model's answer is right) or `corrected` (the right answer, checked
against the task's schema when it is saved). Reviews live in a table of their own keyed by
(job, document): the result row a worker recorded is never written again, so the model's answer
and the reviewer's stay side by side, and a later review of a document replaces the earlier
review, not the answer. The accepted and corrected documents export as labels, the JSONL that
`forkpoint eval --labels` reads: {"document": name, "expected": {...}} per line.

A correction is untrusted input like any request body: at most MAX_CORRECTION_BYTES of JSON
and MAX_CORRECTION_DEPTH levels, validated with the task's own validator (RE2 patterns, no
remote refs: programs/constraints.py).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from forkpoint.errors import Conflict, ForkpointError, RequestError, TooLarge
from forkpoint.programs.results.record import WITH_DATA
from forkpoint.programs.tasks.task import ExtractionTask

SCHEMA = """
CREATE TABLE IF NOT EXISTS reviews (
    job_id TEXT NOT NULL, idx INTEGER NOT NULL, action TEXT NOT NULL, data TEXT,
    reviewed REAL NOT NULL, PRIMARY KEY (job_id, idx)
);
"""
# A correction is one document's answer: real ones are a few kB. The bound keeps what a caller
# can make the gateway parse, validate and store per request small.
MAX_CORRECTION_BYTES = 256 * 1024
MAX_CORRECTION_DEPTH = 64  # as deep as an inline schema may be (programs/constraints.py)

Action = Literal["accepted", "corrected"]


@dataclass(frozen=True)
class Review:
    """What a reviewer said about one document: `data` is the corrected answer (None when the
    model's answer was accepted)."""

    index: int
    action: Action
    data: Any = None
    reviewed: float = 0.0

    def to_json(self) -> dict[str, Any]:
        review: dict[str, Any] = {"action": self.action, "reviewed": self.reviewed}
        if self.action == "corrected":
            review["data"] = self.data
        return review


class ReviewRequest(BaseModel):
    """PUT /v1/jobs/{id}/documents/{index}/review: accept the model's answer, or correct it
    with the whole right answer in `data`."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["accept", "correct"]
    data: Any = None


def read_request(body: bytes) -> ReviewRequest:
    """The request in a review's body, bounded (413 past MAX_CORRECTION_BYTES, 422 if deeper
    than MAX_CORRECTION_DEPTH or not a review)."""
    if len(body) > MAX_CORRECTION_BYTES:
        raise TooLarge(
            f"a review of {len(body)} bytes; the limit is {MAX_CORRECTION_BYTES}",
            hint="a correction is one document's answer",
        )
    try:
        request = ReviewRequest.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise RequestError(f"invalid review: {where}: {first['msg']}") from None
    if _depth(request.data) > MAX_CORRECTION_DEPTH:
        raise RequestError(f"the correction is nested deeper than {MAX_CORRECTION_DEPTH} levels")
    if request.action == "correct" and "data" not in request.model_fields_set:
        raise RequestError("a correction needs 'data': the whole right answer")
    return request


def decide(
    request: ReviewRequest,
    record: dict[str, Any] | None,
    task: ExtractionTask | None,
    index: int,
) -> Review:
    """The review a request makes of a document whose result is `record`: an accepted answer
    must exist, a correction must fit `task` (RequestError, 422, with the reason)."""
    if record is None:
        raise Conflict(f"document {index} has no result yet", hint="review it once it is extracted")
    now = round(time.time(), 3)
    if request.action == "accept":
        if record.get("status") not in WITH_DATA:
            raise Conflict(
                f"document {index} has no answer to accept (its status is {record.get('status')})",
                hint="correct it instead: send the whole right answer",
            )
        return Review(index, "accepted", reviewed=now)
    if task is None:
        raise ValueError("a correction is checked against its task")
    return Review(index, "corrected", checked(task, request.data), now)


def checked(task: ExtractionTask, data: Any) -> Any:
    """`data` validated as an answer of `task` (its model's validators, or its JSON schema),
    as JSON; RequestError naming what does not fit."""
    try:
        valid = task.constraint.validate(json.dumps(data, ensure_ascii=False))
    except ForkpointError as exc:
        reason = exc.message.removeprefix("output ")
        raise RequestError(
            f"the correction does not fit the task {task.name!r}: it {reason}",
            hint="fix the value the reason names and save again",
        ) from None
    return valid.model_dump(mode="json") if isinstance(valid, BaseModel) else valid


def label_lines(
    documents: Iterable[tuple[str, dict[str, Any] | None]], reviews: dict[int, Review]
) -> Iterator[str]:
    """The reviewed documents as labels, in document order: one JSONL line each, the model's
    answer where it was accepted and the correction where it was corrected. `documents` are
    (name, recorded result or None) by index."""
    for index, (name, record) in enumerate(documents):
        review = reviews.get(index)
        if review is None:
            continue
        if review.action == "corrected":
            expected = review.data
        elif record is not None and record.get("status") in WITH_DATA:
            expected = record.get("data")
        else:
            continue
        yield json.dumps({"document": name, "expected": expected}, ensure_ascii=False) + "\n"


def save(db: sqlite3.Connection, job_id: str, review: Review) -> None:
    """Record `review` (replacing the document's earlier review; its result is untouched)."""
    data = None if review.action == "accepted" else json.dumps(review.data, ensure_ascii=False)
    db.execute(
        "INSERT OR REPLACE INTO reviews (job_id, idx, action, data, reviewed) "
        "VALUES (?, ?, ?, ?, ?)",
        (job_id, review.index, review.action, data, review.reviewed),
    )


def load(db: sqlite3.Connection, job_id: str) -> dict[int, Review]:
    rows = db.execute(
        "SELECT idx, action, data, reviewed FROM reviews WHERE job_id = ? ORDER BY idx",
        (job_id,),
    ).fetchall()
    return {
        idx: Review(idx, action, None if data is None else json.loads(data), reviewed)
        for idx, action, data, reviewed in rows
    }


def _depth(value: Any) -> int:
    """How deep `value` nests (iteratively: a hostile value cannot exhaust the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_CORRECTION_DEPTH:
            break
        if isinstance(node, dict):
            stack.extend((child, level + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, level + 1) for child in node)
    return deepest
