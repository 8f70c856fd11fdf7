"""Pydantic model or inline JSON schema → a checked decoding constraint. The only place it happens.

A `Constraint` holds the normalized schema string that `sgl.gen(json_schema=...)` sends to SGLang,
checked the way SGLang's xgrammar backend will use it: first SGLang's own detector of keywords
that xgrammar would silently ignore, then an xgrammar compile. A schema that fails either is a
`SchemaError` carrying xgrammar's message, so nothing ever runs unconstrained by accident. The
same object validates the model's output back: with Pydantic for a model, with a JSON-schema
validator for an inline schema.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ValidationError

from forkpoint.programs.errors import OutputError, SchemaError

# Levels of JSON nesting an inline schema may have (an object property is two: "properties" and
# the property). Real schemas stay far below; the checks below recurse, and a schema hundreds of
# levels deep would end in a RecursionError rather than a clear SchemaError.
MAX_SCHEMA_DEPTH = 64


@dataclass(frozen=True)
class Constraint:
    """A JSON schema that xgrammar compiles, plus how to validate output against it."""

    schema_json: str
    model: type[BaseModel] | None = None

    @classmethod
    def from_model(cls, model: type[BaseModel]) -> Constraint:
        """The constraint for a Pydantic model (its `model_json_schema()`)."""
        try:
            schema = model.model_json_schema()
        except Exception as exc:  # pydantic raises several types for unschemable models
            raise SchemaError(f"{model.__name__} has no JSON schema: {exc}") from exc
        return cls._checked(_normalize(schema), model)

    @classmethod
    def from_schema(cls, schema: dict[str, Any] | str) -> Constraint:
        """The constraint for an inline JSON schema (a dict or its JSON text)."""
        if isinstance(schema, str):
            try:
                schema = json.loads(schema)
            except json.JSONDecodeError as exc:
                raise SchemaError(f"the schema is not valid JSON: {exc}") from exc
            except RecursionError:  # not a ValueError
                raise SchemaError(_too_deep("more than Python can parse")) from None
        if not isinstance(schema, dict):
            raise SchemaError("a JSON schema must be a JSON object")
        if (depth := _depth(schema)) > MAX_SCHEMA_DEPTH:
            raise SchemaError(_too_deep(f"{depth} levels"))
        _check_draft(schema)
        return cls._checked(_normalize(schema), None)

    @classmethod
    def _checked(cls, schema_json: str, model: type[BaseModel] | None) -> Constraint:
        _compile(schema_json)
        return cls(schema_json=schema_json, model=model)

    @property
    def schema(self) -> dict[str, Any]:
        return json.loads(self.schema_json)

    @property
    def key(self) -> str:
        """A stable identity for the schema (compile cache, job records)."""
        return hashlib.sha256(self.schema_json.encode()).hexdigest()[:16]

    @property
    def warnings(self) -> list[str]:
        """Where the schema lets a model run on: unbounded strings and arrays, relaxed oneOf."""
        return list(_lint(self.schema))

    def validate(self, text: str) -> Any:
        """Parse and validate the model's output: a model instance, or plain JSON data."""
        if self.model is not None:
            try:
                return self.model.model_validate_json(text)
            except ValidationError as exc:
                raise OutputError(f"output does not validate: {_short(exc)}") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise OutputError(f"output is not JSON: {exc}") from exc
        import jsonschema

        errors = sorted(jsonschema.Draft202012Validator(self.schema).iter_errors(data), key=str)
        if errors:
            raise OutputError(f"output does not match the schema: {errors[0].message}")
        return data


def _normalize(schema: dict[str, Any]) -> str:
    # Compact, but never key-sorted: xgrammar emits properties in schema order, and that order
    # must match the few-shot answers (and put e.g. line items before the total they sum to).
    return json.dumps(schema, separators=(",", ":"), ensure_ascii=False)


def _depth(value: Any) -> int:
    """How deeply `value` nests (a scalar: 0), counted without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if isinstance(node, (dict, list)):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in children)
    return deepest


def _too_deep(how_deep: str) -> str:
    return f"the schema is nested too deeply ({how_deep}; the limit is {MAX_SCHEMA_DEPTH})"


def _check_draft(schema: dict[str, Any]) -> None:
    import jsonschema

    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise SchemaError(f"not a valid JSON schema: {exc.message}") from exc


@lru_cache(maxsize=256)
def _compile(schema_json: str) -> None:
    """Compile once per distinct schema; raise SchemaError with xgrammar's reason."""
    try:
        import xgrammar
        from sglang.srt.constrained.json_schema_validation import (
            UnsupportedJSONSchemaFeature,
            validate_xgrammar_json_schema,
        )
    except ImportError as exc:  # the LAN-client install has neither
        raise SchemaError(
            "checking a schema needs the server install",
            hint="pip install 'forkpoint[server]', or let the gateway check it",
        ) from exc
    try:
        validate_xgrammar_json_schema(json.loads(schema_json))
    except UnsupportedJSONSchemaFeature as exc:
        raise SchemaError(f"xgrammar cannot enforce this schema: {exc}") from exc
    try:
        # any_whitespace=True is what SGLang's xgrammar backend compiles with by default.
        xgrammar.Grammar.from_json_schema(schema_json, any_whitespace=True)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise SchemaError(f"xgrammar rejected the schema: {exc}") from exc


_NON_RUNAWAY_STRING = ("maxLength", "enum", "const", "format", "pattern")


def _lint(node: Any, path: str = "$") -> Iterator[str]:
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from _lint(item, f"{path}[{i}]")
        return
    if not isinstance(node, dict):
        return
    types = node.get("type")
    types = types if isinstance(types, list) else [types]
    if "string" in types and not any(k in node for k in _NON_RUNAWAY_STRING):
        yield f"{path}: string without maxLength (a model can run on until max tokens)"
    if "array" in types and "maxItems" not in node:
        yield f"{path}: array without maxItems (a model can run on until max tokens)"
    if "oneOf" in node:
        yield f"{path}: oneOf is enforced as anyOf by xgrammar (alternatives may overlap)"
    for key, value in node.items():
        if key in ("properties", "$defs", "definitions", "patternProperties"):
            for name, sub in value.items():
                yield from _lint(sub, f"{path}.{name}")
        elif key in ("items", "anyOf", "oneOf", "allOf", "prefixItems", "additionalProperties"):
            yield from _lint(value, f"{path}.{key}")


def _short(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(root)"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"
