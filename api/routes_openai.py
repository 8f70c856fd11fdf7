"""OpenAI's surface: batches, chat completions and models, for scripts written against the
openai package (change `base_url` and `api_key`, nothing else).

Routes parse, call one function and format: batches are api/batches.py, a request's split into
task and document is programs/openai_chat.py, files are api/routes_files.py.
"""

from __future__ import annotations

import json
import time
import uuid
from functools import lru_cache
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from pydantic import BaseModel, Field

from forkpoint.api.batches import BatchBook, check_metadata
from forkpoint.api.deps import CallerDep, ExtractionsDep, RunnerDep, offload, v1_router
from forkpoint.api.routes_extract import json_body, parsed
from forkpoint.errors import ForkpointError, NotFound, RequestError
from forkpoint.programs.documents.document import from_text
from forkpoint.programs.openai_chat import LineError, completion, parse_request
from forkpoint.programs.tasks.spec import TaskSpec
from forkpoint.programs.tasks.task import ExtractionTask

v1 = v1_router()
OWNED_BY = "forkpoint"


class BatchCreate(BaseModel):
    input_file_id: str = Field(max_length=200)
    endpoint: str = Field(max_length=200)
    completion_window: str = Field("24h", max_length=20)
    metadata: dict[str, Any] | None = None


def batches_of(request: Request) -> BatchBook:
    return request.app.state.batches


BatchesDep = Annotated[BatchBook, Depends(batches_of)]


@v1.post("/batches", openapi_extra=json_body(BatchCreate))
async def create_batch(request: Request, batches: BatchesDep, caller: CallerDep) -> dict[str, Any]:
    """A batch of /v1/chat/completions requests from an uploaded file (purpose "batch"): the
    file is validated now; requests that share everything but their last user message share a
    warmed prefix (see the batch's `forkpoint.groups` and `forkpoint.prefix_tokens`)."""
    body = await parsed(request, BatchCreate)
    metadata = check_metadata(body.metadata)
    return await offload(
        batches.create,
        caller,
        body.input_file_id,
        body.endpoint,
        body.completion_window,
        metadata,
    )


@v1.get("/batches")
def list_batches(
    batches: BatchesDep,
    caller: CallerDep,
    after: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    return batches.list(caller, after=after, limit=limit)


@v1.get("/batches/{batch_id}")
def get_batch(batch_id: str, batches: BatchesDep, caller: CallerDep) -> dict[str, Any]:
    return batches.get(batch_id, caller)


@v1.post("/batches/{batch_id}/cancel")
def cancel_batch(batch_id: str, batches: BatchesDep, caller: CallerDep) -> dict[str, Any]:
    return batches.cancel(batch_id, caller)


@lru_cache(maxsize=64)
def _task(spec_json: str) -> ExtractionTask:
    """A request's task, built and compiled once per distinct task (a script sends the same
    system prompt and schema with every request)."""
    return TaskSpec.model_validate_json(spec_json).to_task()


@v1.post("/chat/completions")
async def chat_completions(
    request: Request, runner: RunnerDep, extractions: ExtractionsDep
) -> dict[str, Any]:
    """One chat completion, synchronously, as a structured extraction: response_format
    json_schema or json_object, the last user message the document. Not streamed."""
    try:
        body = await offload(json.loads, await request.body())
    except (ValueError, RecursionError):
        raise RequestError("the request body is not valid JSON") from None
    if isinstance(body, dict) and body.get("stream"):
        raise LineError(
            "forkpoint answers chat completions whole: stream is not served",
            code="unsupported_value",
            param="stream",
        )
    line = parse_request(body)
    models = runner.settings.models
    if models and line.model not in models:
        raise NotFound(f"the model {line.model!r} is not served here (GET /v1/models)")

    def build() -> ExtractionTask:
        line.check_schema()
        return _task(line.task.model_dump_json(by_alias=True))

    task = await offload(build)
    record = await extractions.extract(task, from_text("request", line.document))
    if record["status"] == "error":
        raise _Failed(record.get("error") or "the request failed")
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    return completion(
        record, model=line.model, completion_id=completion_id, created=int(time.time())
    )


class _Failed(RequestError):
    """A request that got no answer (the runtime refused it, e.g. longer than its context)."""


@v1.get("/models")
def list_models(runner: RunnerDep) -> dict[str, Any]:
    """The model names requests may give: the configured ones (FORKPOINT_MODELS), else the
    served model's own (any name is then accepted: the one runtime answers them all)."""
    return {"object": "list", "data": [_model(name) for name in _names(runner)]}


@v1.get("/models/{model_id:path}")
def get_model(model_id: str, runner: RunnerDep) -> dict[str, Any]:
    if runner.settings.models and model_id not in runner.settings.models:
        raise NotFound(f"the model {model_id!r} is not served here")
    return _model(model_id)


def _names(runner: Any) -> list[str]:
    if runner.settings.models:
        return list(runner.settings.models)
    try:
        return [runner.served_model()]
    except ForkpointError:  # the runtime does not answer yet: no name to show
        return []


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": OWNED_BY}
