"""One document at a time: /v1/extract, programs, tasks and schema checks."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from forkpoint.api.deps import ExtractionsDep, choose, offload, v1_router
from forkpoint.api.schemas import (
    ExtractRequest,
    ExtractResponse,
    ProgramRun,
    SchemaCheck,
    SchemaCheckResult,
    TaskChoice,
    TaskInfo,
)
from forkpoint.errors import RequestError
from forkpoint.programs.constraints import Constraint
from forkpoint.programs.documents.document import from_text
from forkpoint.programs.tasks.registry import builtin_tasks

v1 = v1_router()
Body = TypeVar("Body", bound=BaseModel)


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of a route that parses its own body (`parsed`)."""
    schema = {"application/json": {"schema": model.model_json_schema(by_alias=True)}}
    return {"requestBody": {"content": schema, "required": True}}


async def parsed(request: Request, model: type[Body]) -> Body:
    """The request's JSON body as `model`, parsed in a PARSERS thread: a 64 MB body (or a
    schema checked as it is read) never holds the event loop. RequestError (422) if invalid."""
    try:
        return await offload(model.model_validate_json, await request.body())
    except ValidationError as exc:
        raise RequestError(f"invalid request: {exc}") from None
    except (RecursionError, json.JSONDecodeError):
        raise RequestError("invalid request: the JSON is nested too deeply to read") from None


@v1.post("/extract", response_model=ExtractResponse, openapi_extra=json_body(ExtractRequest))
async def extract(request: Request, extractions: ExtractionsDep) -> dict[str, Any]:
    """One document, synchronously: the validated object (or the reason) and its usage; 503 when
    every extraction slot is taken, 504 past FORKPOINT_EXTRACT_TIMEOUT_SECONDS."""
    body = await parsed(request, ExtractRequest)
    task = (await offload(choose, body)).task  # compiles an inline schema or definition
    return await extractions.extract(task, from_text(body.name, body.document))


@v1.get("/tasks", response_model=list[TaskInfo])
def tasks() -> list[dict[str, Any]]:
    return [
        {
            "name": t.name,
            "description": t.description,
            "schema": t.constraint.schema,
            "examples": len(t.examples),
            "max_output_tokens": t.max_output_tokens,
        }
        for t in builtin_tasks().values()
    ]


@v1.get("/programs", response_model=list[TaskInfo])
def programs() -> list[dict[str, Any]]:
    """The registered SGLang programs: one extraction program per registered task."""
    return tasks()


@v1.post(
    "/programs/{name}/runs", response_model=ExtractResponse, openapi_extra=json_body(ProgramRun)
)
async def run_program(name: str, request: Request, extractions: ExtractionsDep) -> dict[str, Any]:
    """Run program `name` with arguments {"document": text}, as /v1/extract runs one."""
    body = await parsed(request, ProgramRun)
    if set(body.arguments) != {"document"}:
        raise RequestError("a program run takes exactly one argument: 'document'")
    task = (await offload(choose, TaskChoice(task=name))).task
    return await extractions.extract(task, from_text(name, body.arguments["document"]))


@v1.post("/schemas/check", response_model=SchemaCheckResult, openapi_extra=json_body(SchemaCheck))
async def check_schema(request: Request) -> dict[str, Any]:
    """Compile an inline schema with xgrammar: 200 with warnings (keywords checked only after
    decoding, where a model can run on), or 422 with the reason; with strict, 422 for keywords
    that decoding would ignore too."""
    body = await parsed(request, SchemaCheck)

    def compiled() -> dict[str, Any]:
        constraint = Constraint.from_schema(body.schema_, strict=body.strict)
        return {"key": constraint.key, "warnings": constraint.warnings}

    return await offload(compiled)  # in PARSERS, as every other compile
