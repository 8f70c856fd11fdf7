"""How a job records its task: one JSON value, so a restarted gateway builds the same task.

A request names its task three ways (api/schemas.py `TaskChoice`): a built-in task by name, an
inline JSON schema with optional instructions, or a whole task definition. A job stores one
`JobTask`: the built-in's name (its Python model and validators live in the package, so the
name is what rebuilds it), or a definition (programs/tasks/spec.py `TaskSpec`) — an inline
schema is the definition named "inline-schema" with the request's instructions or the default
ones, which builds exactly the task `schema_task` builds. A grouped job (an OpenAI batch, whose
requests may ask different things) stores one definition per group in the store's job_groups,
and each document names its group: its JobTask says only `grouped`.

Stores written before this record held it in three nullable columns (`task`, `schema_json` +
`instructions`, `task_spec`); `from_columns` reads them, and the store migrates every such row
to one `JobTask` when it opens (api/store.py).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from forkpoint.errors import TaskError
from forkpoint.programs.tasks.registry import get_task
from forkpoint.programs.tasks.spec import TaskSpec
from forkpoint.programs.tasks.task import ExtractionTask

INLINE = "inline-schema"  # the name of a task made from an inline schema
DEFAULT_INSTRUCTIONS = "Extract the information the JSON schema asks for from the document."


class JobTask(BaseModel):
    """A built-in task's name, or a task's whole definition: exactly one of them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    builtin: str | None = None
    definition: TaskSpec | None = None
    grouped: str | None = None  # the name a grouped job shows; its tasks are by document
    # why the task cannot be built: a job migrated from an older store whose record today's
    # limits refuse (its documents fail with this reason; see api/store.py _migrate)
    error: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> JobTask:
        given = (self.builtin, self.definition, self.grouped)
        if sum(kind is not None for kind in given) != 1:
            raise ValueError("a job's task is a built-in name, a definition or grouped: one")
        return self

    @classmethod
    def named(cls, name: str) -> JobTask:
        return cls(builtin=name)

    @classmethod
    def inline(cls, schema: dict[str, Any] | str, instructions: str | None = None) -> JobTask:
        """The task of an inline schema: a definition with the default instructions if none."""
        schema = json.loads(schema) if isinstance(schema, str) else schema
        if not isinstance(schema, dict):
            raise TaskError("an inline schema must be a JSON object")
        spec = TaskSpec.model_validate(
            {"name": INLINE, "instructions": instructions or DEFAULT_INSTRUCTIONS, "schema": schema}
        )
        return cls(definition=spec)

    @classmethod
    def from_columns(
        cls,
        task: str,
        schema_json: str | None,
        instructions: str | None,
        task_spec: str | None,
    ) -> JobTask:
        """The record of a job stored before JobTask (three nullable columns)."""
        if task_spec is not None:
            return cls(definition=TaskSpec.model_validate_json(task_spec))
        if schema_json is not None:
            return cls.inline(schema_json, instructions)
        return cls.named(task)

    @classmethod
    def unreadable(cls, name: str, reason: str) -> JobTask:
        return cls(builtin=name, error=reason)

    @property
    def name(self) -> str:
        """What a job shows as its task."""
        if self.definition is not None:
            return self.definition.name
        return self.builtin if self.builtin is not None else self.grouped or ""

    def to_task(self) -> ExtractionTask:
        """The task, built and its schema compiled (TaskError, SchemaError if it cannot be).
        A grouped job has a task per group: the store has them (JobRunner reads them)."""
        if self.error is not None:
            raise TaskError(f"job task {self.name!r}: {self.error}")
        if self.definition is not None:
            return self.definition.to_task()
        if self.grouped is not None:
            raise TaskError(f"job task {self.name!r} has a task per group of documents")
        return get_task(self.builtin or "")

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)

    @classmethod
    def from_json(cls, text: str) -> JobTask:
        return cls.model_validate_json(text)
