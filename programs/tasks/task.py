"""An extraction task: what to ask of every document, and the Pydantic model the answer must fit."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from forkpoint.errors import TaskError

if TYPE_CHECKING:
    from forkpoint.programs.constraints import Constraint
    from forkpoint.programs.copy_grammar import CopyGrammar

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


MAX_TURN_CHARS = 100_000  # one message of a conversation (an OpenAI request's)
MAX_SHOTS = 32  # (user, assistant) pairs before the document


class Conversation(BaseModel):
    """A prompt given as chat messages, written verbatim (an OpenAI request's): the system text
    (None: no system message) and the (user, assistant) turns before the document's turn. A task
    with one writes neither its instructions nor a field guide nor its examples: these messages
    are the whole prefix, and each document is the last user turn, exactly as given."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    system: str | None = Field(None, max_length=MAX_TURN_CHARS)
    shots: tuple[tuple[str, str], ...] = Field((), max_length=MAX_SHOTS)

    def model_post_init(self, context: Any, /) -> None:
        for user, assistant in self.shots:
            if max(len(user), len(assistant)) > MAX_TURN_CHARS:
                raise ValueError(f"a message of the conversation has over {MAX_TURN_CHARS} chars")


class Sampling(BaseModel):
    """How the answer is sampled: greedy by default (an extraction wants the likeliest answer).
    `seed` is passed to SGLang as `sampling_seed`, which it honours only when the server runs
    with --enable-deterministic-inference (as OpenAI's seed, a best effort)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int | None = Field(None, ge=-(2**63), lt=2**63)
    stop: tuple[str, ...] = Field((), max_length=4)


@dataclass(frozen=True)
class Example:
    """One few-shot example: a document and the object the model should extract from it (an
    instance of the task's model, or JSON data for a task given as a schema)."""

    document: str
    output: BaseModel | dict[str, Any]

    def answer(self) -> str:
        """The object as the model should write it: compact JSON, fields in schema order."""
        if isinstance(self.output, BaseModel):
            return self.output.model_dump_json()
        return json.dumps(self.output, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class ExtractionTask:
    """One extraction task, run the same way over every document of a job.

    Everything but the document goes before the fork point: the instructions, a guide to the
    output model's fields (from their `Field(description=...)`) and the few-shot examples. That
    prefix is computed once by RadixAttention, so richness there is nearly free per document.
    """

    name: str
    instructions: str
    output_model: type[BaseModel] | None = None
    examples: tuple[Example, ...] = field(default=())
    max_output_tokens: int = 512
    description: str = ""
    json_schema: dict[str, Any] | str | None = None  # instead of output_model: an inline schema
    # Fields whose values must occur in the document ("vendor", "line_items[].description");
    # a result where one does not is `needs_review`.
    grounded_fields: tuple[str, ...] = ()
    # How often a result that fails the model's own validators (e.g. a total that is not the
    # sum of its lines) is re-asked, with the validation error, before it is recorded `invalid`.
    max_reasks: int = 1
    # A document longer than the runtime's context: an error naming the sizes, or extracted in
    # overlapping chunks whose answers are merged (see long_documents.py).
    long_documents: Literal["error", "chunk"] = "error"
    chunk_overlap_tokens: int = 100
    # Under the chunk policy, the most document tokens one request carries (default: what the
    # runtime's context leaves). Smaller chunks mean shorter prefills, and small models miss less.
    max_chunk_tokens: int | None = None
    # Fields whose value can only be a span of the document ("invoice_number",
    # "line_items[].description"): the grammar allows nothing else while decoding (see
    # copy_grammar.py). String properties marked `"x-forkpoint-copy": true` in the schema are
    # added here. Numbers, dates and enums are read, not copied: a TaskError.
    copy_fields: tuple[str, ...] = ()
    # The prompt as verbatim chat messages (an OpenAI request's) instead of the instructions,
    # field guide and examples; the instructions may then be empty.
    conversation: Conversation | None = None
    sampling: Sampling = Sampling()
    # A value whose confidence (the probability the model gave the tokens that wrote it, see
    # confidence.py) is under this makes the document `needs_review`: one threshold for every
    # value, or per field ({"total": 0.8, "line_items[].amount": 0.5}; a field's name covers the
    # values under it). Off by default: on the embedded 135M model confidence separates right
    # from wrong values only weakly (README, "Confidence per field").
    review_below: float | dict[str, float] | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise TaskError(
                f"task name {self.name!r} is not a valid name",
                hint="use lowercase letters, digits, '-' or '_', starting with a letter",
            )
        if (self.output_model is None) == (self.json_schema is None):
            raise TaskError(f"task {self.name!r}: give exactly one of output_model and json_schema")
        if self.output_model is not None and not (
            isinstance(self.output_model, type) and issubclass(self.output_model, BaseModel)
        ):
            raise TaskError(f"task {self.name!r}: output_model must be a Pydantic model class")
        if not self.instructions.strip() and self.conversation is None:
            raise TaskError(f"task {self.name!r}: instructions are empty")
        if self.conversation is not None and self.examples:
            raise TaskError(f"task {self.name!r}: a conversation holds its own turns, no examples")
        if self.max_output_tokens < 1:
            raise TaskError(f"task {self.name!r}: max_output_tokens must be positive")
        if self.max_chunk_tokens is not None and self.max_chunk_tokens < 64:
            raise TaskError(f"task {self.name!r}: max_chunk_tokens must be at least 64")
        if not 0 <= self.max_reasks <= 3:
            raise TaskError(f"task {self.name!r}: max_reasks must be between 0 and 3")
        object.__setattr__(self, "grounded_fields", tuple(self.grounded_fields))
        self._check_review_below()
        self._check_copy_fields()
        object.__setattr__(self, "examples", tuple(self.examples))
        for i, example in enumerate(self.examples):
            if self.output_model is None:
                self._check_example_data(i, example)
            elif not isinstance(example.output, self.output_model):
                raise TaskError(
                    f"task {self.name!r}: example {i} output is a "
                    f"{type(example.output).__name__}, not a {self.output_model.__name__}"
                )

    def _check_review_below(self) -> None:
        below = self.review_below
        named = below.items() if isinstance(below, dict) else [("review_below", below)]
        for name, value in named:
            if value is not None and not (
                isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1
            ):
                raise TaskError(
                    f"task {self.name!r}: review_below for {name!r} is {value!r}, not a "
                    "probability between 0 and 1"
                )

    def _check_example_data(self, i: int, example: Example) -> None:
        """A schema task's example: JSON data the schema accepts (checked when first needed
        would be too late: a wrong example teaches every document the wrong answer)."""
        from forkpoint.errors import OutputError

        if not isinstance(example.output, dict):
            raise TaskError(f"task {self.name!r}: example {i} output must be a JSON object")
        try:
            self.constraint.validate(example.answer())
        except OutputError as exc:
            raise TaskError(f"task {self.name!r}: example {i} {exc.message}") from exc

    def _check_copy_fields(self) -> None:
        """Copy paths checked against the schema now, in pure Python (the grammar itself is
        compiled when first needed, where xgrammar is installed)."""
        from forkpoint.programs.copy_grammar import COPY_KEYWORD, check_copy_fields

        if self.output_model is not None:
            try:
                schema = self.output_model.model_json_schema()
            except Exception:  # no schema: the constraint says why (a SchemaError)
                if self.copy_fields:
                    self.compile()
                return
        elif isinstance(self.json_schema, dict):
            schema = self.json_schema
        elif self.copy_fields or COPY_KEYWORD in str(self.json_schema):
            schema = self.constraint.schema  # a schema as text: parsed (and checked) once
        else:
            return
        try:
            fields = check_copy_fields(schema, self.copy_fields)
        except TaskError as exc:
            raise TaskError(f"task {self.name!r}: {exc.message}", hint=exc.hint) from exc
        object.__setattr__(self, "copy_fields", fields)

    @cached_property
    def copy_grammar(self) -> CopyGrammar | None:
        """The schema's grammar with the copy fields left to each document; None without any."""
        from forkpoint.programs.copy_grammar import CopyGrammar

        if not self.copy_fields:
            return None
        # Without free whitespace, as the shipped profiles decode a plain schema (compact_json:
        # a 135M model otherwise spends its budget on whitespace). Under a profile without
        # compact_json the copy grammar is the stricter one; every answer still validates.
        schema = self.constraint.schema
        return CopyGrammar.from_schema(schema, self.copy_fields, any_whitespace=False)

    @property
    def field_names(self) -> tuple[str, ...]:
        """The answer's top-level fields, from the model or the inline schema."""
        if self.output_model is not None:
            return tuple(self.output_model.model_fields)
        return tuple(self.constraint.schema.get("properties") or ())

    @cached_property
    def key(self) -> str:
        """The task's identity by content (spec.task_key), computed once per task object: the
        gateway looks its warmed extractor up by it for every document."""
        from forkpoint.programs.tasks.spec import task_key

        return task_key(self)

    @cached_property
    def constraint(self) -> Constraint:
        """The output model as a checked decoding constraint (compiled once)."""
        from forkpoint.programs.constraints import Constraint

        if self.output_model is not None:
            return Constraint.from_model(self.output_model)
        assert self.json_schema is not None  # __post_init__: exactly one of the two is given
        return Constraint.from_schema(self.json_schema)

    def compile(self, *, copy_grammar: bool = False) -> Constraint:
        """The constraint, compiled now rather than at its first use (once per task: it is the
        cached `constraint`), so a bad schema fails where the task was given. With
        `copy_grammar`, the copy fields' grammar too (the cached `copy_grammar`, None without
        copy fields): only the extractor, which reads it per document, asks for that."""
        if copy_grammar:
            _ = self.copy_grammar
        return self.constraint


def schema_task(schema: dict[str, Any] | str, instructions: str, **options: Any) -> ExtractionTask:
    """A task for an inline JSON schema, checked at once (raises SchemaError)."""
    task = ExtractionTask(
        name="inline-schema", instructions=instructions, json_schema=schema, **options
    )
    task.compile()
    return task
