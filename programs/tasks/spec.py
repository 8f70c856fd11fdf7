"""A task as data: what travels over HTTP so a gateway runs a user's own `ExtractionTask`.

`TaskSpec.from_task(task)` writes down everything the prompt and the checks are built from — the
instructions, the output model's JSON schema (the whole schema, field descriptions included),
the few-shot examples as JSON, grounded fields, output limit, re-asks and the long-document
policy — and `spec.to_task()` builds a task whose fork-point prefix is the same text, so the
same tokens, as the original's. What cannot travel is Python: the model's own validators run
where the model class lives (the client validates each answer into it again).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from forkpoint.programs.constraints import MAX_SCHEMA_CHARS
from forkpoint.programs.tasks.task import Conversation, Example, ExtractionTask, Sampling

MAX_EXAMPLES = 8
MAX_EXAMPLE_CHARS = 20_000
MAX_INSTRUCTIONS_CHARS = 8_000
# What a spec carries over from a task as it is (the schema and examples are converted).
OPTIONS = (
    "name",
    "instructions",
    "description",
    "grounded_fields",
    "copy_fields",
    "max_output_tokens",
    "max_reasks",
    "long_documents",
    "chunk_overlap_tokens",
    "max_chunk_tokens",
    "conversation",
    "sampling",
    "review_below",
)


class ExampleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    document: str = Field(min_length=1, max_length=MAX_EXAMPLE_CHARS)
    output: dict[str, Any]


class TaskSpec(BaseModel):
    """A whole extraction task in JSON. Checked like a task: `to_task()` raises TaskError or
    SchemaError for anything a task would refuse (an example the schema rejects, too)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(min_length=1, max_length=64)
    # empty only for a task whose prompt is a `conversation`
    instructions: str = Field("", max_length=MAX_INSTRUCTIONS_CHARS)
    json_schema: dict[str, Any] = Field(alias="schema")
    examples: tuple[ExampleSpec, ...] = Field((), max_length=MAX_EXAMPLES)
    description: str = Field("", max_length=2_000)
    grounded_fields: tuple[str, ...] = Field((), max_length=64)
    copy_fields: tuple[str, ...] = Field((), max_length=64)
    max_output_tokens: int = Field(512, ge=1, le=16_384)
    max_reasks: int = Field(1, ge=0, le=3)
    long_documents: Literal["error", "chunk"] = "error"
    chunk_overlap_tokens: int = Field(100, ge=0, le=4_096)
    max_chunk_tokens: int | None = Field(None, ge=64, le=1_000_000)
    conversation: Conversation | None = None
    sampling: Sampling = Sampling()
    # one threshold, or one per field (at most 64): see ExtractionTask.review_below
    review_below: float | dict[str, float] | None = None

    @model_validator(mode="after")
    def _bounded_review_below(self) -> TaskSpec:
        below = self.review_below
        if isinstance(below, dict) and len(below) > 64:
            raise ValueError("review_below names more than 64 fields")
        return self

    @classmethod
    def from_task(cls, task: ExtractionTask) -> TaskSpec:
        examples = [
            ExampleSpec(document=ex.document, output=json.loads(ex.answer()))
            for ex in task.examples
        ]
        options = {name: getattr(task, name) for name in OPTIONS}
        return cls(json_schema=_schema(task), examples=tuple(examples), **options)

    def to_task(self) -> ExtractionTask:
        """The task this spec describes, its schema compiled (raises SchemaError, TaskError)."""
        from forkpoint.errors import SchemaError

        if len(self.schema_text) > MAX_SCHEMA_CHARS:
            raise SchemaError(
                f"task {self.name!r}: the schema has {len(self.schema_text):,} characters, "
                f"more than {MAX_SCHEMA_CHARS:,}"
            )
        task = ExtractionTask(
            json_schema=self.json_schema,
            examples=tuple(Example(ex.document, ex.output) for ex in self.examples),
            **{name: getattr(self, name) for name in OPTIONS},
        )
        task.compile()
        return task

    @property
    def schema_text(self) -> str:
        return json.dumps(self.json_schema, separators=(",", ":"), ensure_ascii=False)

    @property
    def key(self) -> str:
        """Content hash: two specs with the same key are the same task (cache, job records)."""
        # without review_below when it is off, so every key from before it existed stays the same
        off = {"review_below"} if self.review_below is None else None
        text = self.model_dump_json(by_alias=True, exclude=off)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def task_key(task: ExtractionTask) -> str:
    """A task's identity by content: everything its prompt and checks are built from (two tasks
    with one key share a warmed prefix). A model's Python validators are not part of it."""
    return TaskSpec.from_task(task).key


def _schema(task: ExtractionTask) -> dict[str, Any]:
    """The task's whole schema, without compiling it (a LAN client has no xgrammar)."""
    if task.output_model is not None:
        return task.output_model.model_json_schema()
    given = task.json_schema
    return json.loads(given) if isinstance(given, str) else dict(given or {})
