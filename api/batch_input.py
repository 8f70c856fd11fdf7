"""An OpenAI batch input file read and checked: its requests, grouped by what they share.

Each line is `{custom_id, method: "POST", url, body}`. A file whose lines cannot be read as
requests fails validation the way OpenAI's does, every fault listed with its line number (at
most MAX_ERRORS): a line that is not JSON, a missing or wrong field, a `url` that is not the
batch's endpoint, a duplicate `custom_id`, a schema xgrammar cannot compile, more requests than
a job may hold. A readable request that asks what forkpoint cannot honour (tools, images, n > 1,
an unknown model...) is not a validation failure: it is that line's error, in the error file.

The rest are grouped by (model, task): the task is what a request's messages before the last
user turn, its schema and its sampling make (programs/openai_chat.py), so requests that differ
only in their last user message share one group, whose prefix is warmed once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forkpoint.errors import ForkpointError
from forkpoint.programs.openai_chat import ChatLine, LineError, parse_request
from forkpoint.programs.tasks.spec import TaskSpec

ENDPOINTS = ("/v1/chat/completions",)
MAX_ERRORS = 100  # validation errors listed (OpenAI lists a sample too)
MAX_LINE_BYTES = 8 * 1024 * 1024  # one request; a document is at most max_document_chars
REFUSED = -1  # the part of a line refused at validation: it runs no request


@dataclass(frozen=True)
class PlannedLine:
    custom_id: str
    document: str
    part: int  # its group, or REFUSED
    refusal: LineError | None = None


@dataclass
class BatchPlan:
    lines: list[PlannedLine] = field(default_factory=list)
    groups: list[TaskSpec] = field(default_factory=list)  # by part
    models: list[str] = field(default_factory=list)  # each group's model, by part
    errors: list[dict[str, Any]] = field(default_factory=list)  # OpenAI's validation errors

    def fail(self, line: int | None, code: str, message: str, param: str | None = None) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"code": code, "message": message, "param": param, "line": line})


def plan(
    path: Path,
    *,
    endpoint: str,
    models: list[str],
    max_requests: int,
    max_document_chars: int,
) -> BatchPlan:
    """Read and check the input file at `path`. `models`: the names this gateway serves (empty:
    any name, the one runtime answers them all)."""
    result = BatchPlan()
    seen: set[str] = set()
    groups: dict[tuple[str, str], int] = {}
    compiled: dict[tuple[str, bool], str | None] = {}  # (schema, strict) -> why it fails
    for number, raw in _lines(path, result):
        if len(result.lines) == max_requests:
            result.fail(number, "too_many_requests", f"a batch holds at most {max_requests}")
            break
        request = _request(number, raw, endpoint, result)
        if request is None:
            continue
        custom_id, body = request
        if custom_id in seen:
            result.fail(number, "duplicate_custom_id", f"custom_id {custom_id!r} is used twice")
            continue
        seen.add(custom_id)
        try:
            line = parse_request(body)
        except LineError as refused:
            result.lines.append(PlannedLine(custom_id, "", REFUSED, refused))
            continue
        refusal = _refusal(line, models, max_document_chars)
        if refusal is not None:
            result.lines.append(PlannedLine(custom_id, "", REFUSED, refusal))
            continue
        why = _compile(line, compiled)
        if why is not None:
            result.fail(number, "invalid_schema", why, "body.response_format.json_schema")
            continue
        part = groups.setdefault(line.group, len(groups))
        if part == len(result.groups):
            result.groups.append(line.task)
            result.models.append(line.model)
        result.lines.append(PlannedLine(custom_id, line.document, part))
    if not result.lines and not result.errors:
        result.fail(None, "empty_file", "the input file holds no requests")
    return result


def _lines(path: Path, result: BatchPlan) -> Iterator[tuple[int, bytes]]:
    """(line number from 1, line) for every non-blank line; a line over MAX_LINE_BYTES is a
    validation error (read no further into memory than that)."""
    with path.open("rb") as file:
        number = 0
        while True:
            raw = file.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            number += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                result.fail(number, "line_too_long", f"a line holds at most {MAX_LINE_BYTES} bytes")
                while raw and not raw.endswith(b"\n"):  # skip the rest of that line
                    raw = file.readline(MAX_LINE_BYTES + 1)
                continue
            if raw.strip():
                yield number, raw


def _request(
    number: int, raw: bytes, endpoint: str, result: BatchPlan
) -> tuple[str, dict[str, Any]] | None:
    try:
        line = json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        result.fail(number, "invalid_json_line", "this line is not valid JSON")
        return None
    if not isinstance(line, dict):
        result.fail(number, "invalid_request", "a line must be a JSON object")
        return None
    custom_id = line.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id or len(custom_id) > 512:
        result.fail(number, "missing_custom_id", "custom_id must be a string of 1-512 chars")
        return None
    if line.get("method") != "POST":
        result.fail(number, "invalid_method", "method must be POST", "method")
        return None
    if line.get("url") != endpoint:
        result.fail(
            number,
            "mismatched_endpoint",
            f"url {line.get('url')!r} is not the batch's endpoint {endpoint!r}",
            "url",
        )
        return None
    body = line.get("body")
    if not isinstance(body, dict):
        result.fail(number, "missing_body", "body must be a JSON object", "body")
        return None
    return custom_id, body


def _refusal(line: ChatLine, models: list[str], max_chars: int) -> LineError | None:
    if models and line.model not in models:
        return LineError(
            f"the model {line.model!r} is not served here (GET /v1/models)",
            code="model_not_found",
            param="model",
        )
    if len(line.document) > max_chars:
        return LineError(
            f"the last user message has {len(line.document)} characters; the limit is {max_chars}",
            code="context_length_exceeded",
            param="messages",
        )
    return None


def _compile(line: ChatLine, compiled: dict[tuple[str, bool], str | None]) -> str | None:
    """Why the line's schema cannot be decoded with, or None: compiled once per schema."""
    key = (line.task.schema_text, line.strict)
    if key not in compiled:
        try:
            line.check_schema()
            line.task.to_task()  # builds the task and compiles its grammar with xgrammar
            compiled[key] = None
        except ForkpointError as exc:
            compiled[key] = exc.message
    return compiled[key]
