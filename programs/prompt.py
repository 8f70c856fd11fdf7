"""The text of an extraction prompt: the shared prefix before the fork point, and each turn.

The prefix holds the instructions, a guide to every output field (name, type, bounds and the
`Field(description=...)` text: the grammar constrains the shape, only words tell the model what a
field means) and the few-shot examples. It is identical for every document of a job, so SGLang
computes it once; `TaskPrompt.prefix` is what the batch driver warms before the documents run.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from forkpoint.programs.tasks.task import ExtractionTask
from forkpoint.programs.templates import ChatFormat, get_chat_format

ANSWER_RULE = (
    "Answer with a single JSON object that follows the field guide. Copy values exactly as "
    "they appear in the document. Use null for a field the document does not state; never guess."
)


def reask_turn(error: str) -> str:
    """The user turn after an answer that failed validation (Instructor-style)."""
    return (
        f"That JSON object fails validation: {error}\n"
        "Answer again with a corrected JSON object for the same document."
    )


def user_turn(document: str) -> str:
    """How a document is presented to the model (the same for few-shot and real documents)."""
    return f"Document:\n{document}"


@dataclass(frozen=True)
class TaskPrompt:
    """One task rendered in one chat format."""

    task: ExtractionTask
    chat_format: ChatFormat

    @cached_property
    def system(self) -> str | None:
        """The system text: the task's instructions, field guide and answer rule, or a
        conversation's own system message (None if it has none)."""
        if self.task.conversation is not None:
            return self.task.conversation.system
        guide = field_guide(self.task.constraint.schema)
        return f"{self.task.instructions.strip()}\n\n{guide}\n\n{ANSWER_RULE}"

    @cached_property
    def shots(self) -> tuple[tuple[str, str], ...]:
        """The (user, assistant) turns before the document's: the few-shot examples, or a
        conversation's turns verbatim."""
        if self.task.conversation is not None:
            return self.task.conversation.shots
        return tuple((user_turn(ex.document), ex.answer()) for ex in self.task.examples)

    @cached_property
    def prefix(self) -> str:
        """Everything before the fork point: system text and few-shot turns."""
        return self.chat_format.prefix(self.system, self.shots)

    def document_turn(self, document: str) -> str:
        """Everything after the fork point, up to where generation starts: the document as the
        task presents it, or (a conversation's) the last user message as it is."""
        user = document if self.task.conversation is not None else user_turn(document)
        return self.chat_format.turn(user, opens=not self.shots and self.system is not None)

    def reask(self, document: str, attempts: list[tuple[str, str]]) -> str:
        """The document turn followed by each (answer, validation error) so far."""
        text = self.document_turn(document)
        for answer, error in attempts:
            text += self.chat_format.followup(answer, reask_turn(error))
        return text

    def full(self, document: str) -> str:
        return self.prefix + self.document_turn(document)


def task_prompt(task: ExtractionTask, chat_format: str | ChatFormat) -> TaskPrompt:
    fmt = get_chat_format(chat_format) if isinstance(chat_format, str) else chat_format
    return TaskPrompt(task, fmt)


def field_guide(schema: dict[str, Any]) -> str:
    """Render an object schema's fields (and nested object definitions) as a readable list."""
    defs = schema.get("$defs", {})
    lines = ["Fields of the JSON object:"]
    lines += _fields(schema, defs, indent="")
    for name, sub in defs.items():
        if sub.get("type") == "object":
            lines.append(f"\n{name} objects have these fields:")
            lines += _fields(sub, defs, indent="")
    return "\n".join(lines)


def _fields(schema: dict[str, Any], defs: dict[str, Any], indent: str) -> list[str]:
    required = set(schema.get("required", []))
    lines = []
    for name, sub in schema.get("properties", {}).items():
        kind = _describe(sub, defs)
        need = "required" if name in required else "optional"
        text = f"{indent}- {name} ({kind}, {need})"
        description = sub.get("description") or _deref(sub, defs).get("description")
        if description:
            text += f": {description.strip()}"
        lines.append(text)
    return lines


def _deref(sub: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = sub.get("$ref", "")
    return defs.get(ref.rsplit("/", 1)[-1], {}) if ref else sub


def _describe(sub: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in sub:
        target = sub["$ref"].rsplit("/", 1)[-1]
        return _describe(defs[target], defs) if "enum" in defs.get(target, {}) else target
    if "anyOf" in sub:
        options = [o for o in sub["anyOf"] if o.get("type") != "null"]
        nullable = len(options) < len(sub["anyOf"])
        kind = " or ".join(_describe(o, defs) for o in options)
        return f"{kind} or null" if nullable else kind
    if "enum" in sub:
        return "one of " + ", ".join(repr(v) for v in sub["enum"])
    if "const" in sub:
        return f"always {sub['const']!r}"
    kind = sub.get("type", "any")
    if kind == "array":
        item = _describe(sub.get("items", {}), defs)
        bound = f", at most {sub['maxItems']}" if "maxItems" in sub else ""
        return f"list of {item}{bound}"
    if kind == "string":
        if "format" in sub:
            return {"date": "date YYYY-MM-DD", "date-time": "date-time ISO 8601"}.get(
                sub["format"], f"string ({sub['format']})"
            )
        return f"text, at most {sub['maxLength']} characters" if "maxLength" in sub else "text"
    return {"integer": "whole number", "number": "number", "boolean": "true/false"}.get(kind, kind)
