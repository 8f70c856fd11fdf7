"""Request and response bodies of the gateway's /v1 API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from forkpoint.programs.constraints import check_bounds, refuse_unenforced
from forkpoint.programs.results.record import ResultRecord
from forkpoint.programs.tasks.spec import MAX_INSTRUCTIONS_CHARS, TaskSpec

STRICT = (
    "Refuse (422) an inline schema with keywords xgrammar ignores while decoding (multipleOf, "
    "uniqueItems, not, if/then, unknown formats, ...), instead of accepting it with warnings "
    "and checking those keywords after decoding."
)


class TaskChoice(BaseModel):
    """A registered task by name, an inline JSON schema (with optional instructions), or a whole
    task definition (a user's own ExtractionTask as data: forkpoint.programs.tasks.spec)."""

    task: str | None = Field(None, description="A registered task name (GET /v1/tasks).")
    json_schema: dict[str, Any] | None = Field(None, alias="schema", description="Inline schema.")
    instructions: str | None = Field(None, max_length=MAX_INSTRUCTIONS_CHARS)
    task_definition: TaskSpec | None = Field(
        None,
        description="A whole task: name, instructions, schema, few-shot examples, grounded "
        "fields, output limit, re-asks, long-document policy (what TaskSpec.from_task writes).",
    )
    strict: bool = Field(False, description=STRICT)

    model_config = {"populate_by_name": True}

    @model_validator(mode="after")
    def _one_of(self) -> TaskChoice:
        given = [self.task, self.json_schema, self.task_definition]
        if sum(choice is not None for choice in given) != 1:
            raise ValueError("give exactly one of 'task', 'schema' and 'task_definition'")
        if self.json_schema is not None:
            # SchemaError (422): too large, a ref outside it, a pattern RE2 refuses; with
            # strict, a keyword decoding would ignore too
            (refuse_unenforced if self.strict else check_bounds)(self.json_schema)
        return self


class ExtractRequest(TaskChoice):
    document: str = Field(description="The document's text.")
    name: str = Field("document", max_length=500)


class InputDocument(BaseModel):
    name: str = Field(max_length=500)
    text: str


class Label(BaseModel):
    document: str = Field(max_length=500)
    expected: dict[str, Any]


class JobRequest(TaskChoice):
    documents: list[InputDocument] = Field(min_length=1)
    labels: list[Label] | None = Field(
        None, description="Expected objects: makes this an evaluation job (GET .../eval)."
    )


# /v1/extract's answer is the one result record (programs/results/record.py), with every usage field
ExtractResponse = ResultRecord


class JobStatus(BaseModel):
    id: str
    task: str
    state: Literal["queued", "running", "done", "cancelled"]
    total: int
    done: int
    failed: int
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    elapsed_seconds: float
    read_tokens_per_second: float
    write_tokens_per_second: float
    # NGRAM speculation: how much of the job's text the runtime holds as its draft corpus
    # (corpus_id, documents, documents_sent, tokens_loaded, note); null when speculation is off.
    speculation_corpus: dict[str, Any] | None = None


class TaskInfo(BaseModel):
    name: str
    description: str
    schema_: dict[str, Any] = Field(alias="schema")
    examples: int
    max_output_tokens: int


class SchemaCheck(BaseModel):
    schema_: dict[str, Any] = Field(alias="schema")
    strict: bool = Field(False, description=STRICT)


class SchemaCheckResult(BaseModel):
    key: str
    warnings: list[str]


class ProgramRun(BaseModel):
    arguments: dict[str, str] = Field(description='{"document": "..."}')


class ErrorBody(BaseModel):
    error: str
    hint: str | None = None
    retryable: bool = False
