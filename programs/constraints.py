"""Pydantic model or inline JSON schema → a checked decoding constraint. The only place it happens.

A `Constraint` holds two forms of one schema. The whole schema, as given, validates the model's
output (Pydantic for a model, a JSON-schema validator with format checks for an inline schema).
The decoding schema, which `sgl.gen(json_schema=...)` sends to SGLang, is the same schema less
the keywords xgrammar would ignore while decoding (`multipleOf`, `uniqueItems`, `not`, `if`,
formats it does not know, a pattern together with length bounds, ...): SGLang refuses a schema
that still has them. Each one dropped is a warning naming it and its JSON pointer, and is checked
after decoding, where a failure is re-asked like any validator's. `strict=True` refuses such a
schema instead. The decoding schema is checked the way SGLang's xgrammar backend will use it:
SGLang's own detector of ignored keywords, then an xgrammar compile; a schema that fails either
is a `SchemaError` carrying the reason, so nothing ever runs less constrained than it says.

An inline schema is a caller's code, run by the gateway (at the door, on every example, and on
every answer a worker validates), so it is bounded: at most `MAX_SCHEMA_CHARS` of JSON and
`MAX_SCHEMA_DEPTH` levels; a `$ref` only inside the schema (`#...`; the validator is given a
registry that retrieves nothing, so no schema makes it open a URL or a file); every `pattern`
and `patternProperties` key compiled and matched by RE2, in time linear in the string (Python's
`re` backtracks: `^(a+)+b$` on 40 characters is a day, with the GIL held), and one RE2 refuses
(a backreference, a lookaround, a repetition over 1000) is a `SchemaError`; `uniqueItems` by
hashing, linear in the array (jsonschema compares pairs when items are objects).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation, localcontext
from functools import cached_property, lru_cache
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from forkpoint.errors import OutputError, SchemaError

# Levels of JSON nesting an inline schema may have (an object property is two: "properties" and
# the property). Real schemas stay far below; the checks below recurse, and a schema hundreds of
# levels deep would end in a RecursionError rather than a clear SchemaError.
MAX_SCHEMA_DEPTH = 64
# Characters of an inline schema's compact JSON. Real schemas (the 200 of perf/results/
# schema-sample) are far smaller; the bound keeps what the compile caches hold small.
MAX_SCHEMA_CHARS = 64_000
# The keywords whose string value names another schema by URI.
_REF_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")
# Keywords whose values are data, not schemas: a {"$ref": ...} inside them is never resolved.
_DATA_KEYWORDS = ("const", "default", "enum", "examples")


@dataclass(frozen=True)
class Constraint:
    """A JSON schema whose decoding form xgrammar compiles, plus how to validate output."""

    schema_json: str  # what SGLang decodes with: the schema less the keywords xgrammar ignores
    model: type[BaseModel] | None = None
    full_json: str = ""  # the whole schema, as given ("": the same as schema_json)
    unenforced: tuple[str, ...] = field(default=())  # one line per keyword checked only after

    @classmethod
    def from_model(cls, model: type[BaseModel], *, strict: bool = False) -> Constraint:
        """The constraint for a Pydantic model (its `model_json_schema()`)."""
        try:
            schema = model.model_json_schema()
        except Exception as exc:  # pydantic raises several types for unschemable models
            raise SchemaError(f"{model.__name__} has no JSON schema: {exc}") from exc
        return cls._checked(schema, model, strict)

    @classmethod
    def from_schema(cls, schema: dict[str, Any] | str, *, strict: bool = False) -> Constraint:
        """The constraint for an inline JSON schema (a dict or its JSON text).

        Keywords xgrammar would ignore while decoding are checked after it, with a warning each;
        `strict=True` refuses them (SchemaError) instead."""
        if isinstance(schema, str):
            try:
                schema = json.loads(schema)
            except json.JSONDecodeError as exc:
                raise SchemaError(f"the schema is not valid JSON: {exc}") from exc
            except RecursionError:  # not a ValueError
                raise SchemaError(_too_deep("more than Python can parse")) from None
        if not isinstance(schema, dict):
            raise SchemaError("a JSON schema must be a JSON object")
        check_bounds(schema)
        _check_draft(schema)
        return cls._checked(schema, None, strict)

    @classmethod
    def _checked(
        cls, schema: dict[str, Any], model: type[BaseModel] | None, strict: bool
    ) -> Constraint:
        unenforced: list[str] = []
        decoding = _decoding_form(schema, "", unenforced, _ignored_in(schema))
        if strict:
            _refuse(unenforced)
        schema_json, full_json = _normalize(decoding), _normalize(schema)
        _compile(schema_json)
        full = "" if full_json == schema_json else full_json
        return cls(schema_json, model, full_json=full, unenforced=tuple(unenforced))

    @property
    def schema(self) -> dict[str, Any]:
        """The whole schema, as given (what the output is validated against)."""
        return json.loads(self.full_json or self.schema_json)

    @property
    def decoding_schema(self) -> dict[str, Any]:
        """What decoding enforces: the schema less the keywords xgrammar ignores. Build any
        other grammar (an EBNF) from this one, so it never depends on an ignored keyword."""
        return json.loads(self.schema_json)

    @property
    def key(self) -> str:
        """A stable identity for the schema (compile cache, job records)."""
        return hashlib.sha256((self.full_json or self.schema_json).encode()).hexdigest()[:16]

    @property
    def warnings(self) -> list[str]:
        """Keywords checked only after decoding, and where the decoding schema lets a model run
        on: unbounded strings and arrays, relaxed oneOf."""
        return [*self.unenforced, *_lint(self.decoding_schema)]

    @cached_property
    def _validator(self) -> Any:
        import jsonschema
        from referencing import Registry

        schema = self.schema
        keywords = {
            "multipleOf": _multiple_of,
            "pattern": _pattern,
            "patternProperties": _pattern_properties,
            "uniqueItems": _unique_items,
        }
        validator = jsonschema.validators.extend(_draft(schema), keywords)
        # An empty registry, whose retrieve always fails: a ref outside the schema is refused at
        # the door (check_bounds); this keeps one from being fetched if it ever got that far
        # (without a registry, jsonschema fetches remote refs with urlopen).
        registry: Registry[Any] = Registry()
        return validator(schema, format_checker=_format_checker(), registry=registry)

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
        from referencing.exceptions import Unresolvable

        try:
            errors = sorted(self._validator.iter_errors(data), key=str)
        except Unresolvable as exc:  # a local ref to nothing: the schema's fault, not the answer's
            raise SchemaError(f"the schema has a $ref that resolves to nothing: {exc}") from None
        except RecursionError:  # a ref cycle that consumes no input, e.g. {"$ref": "#"}
            raise SchemaError("the schema's $refs loop without end") from None
        if errors:
            where = _pointer(errors[0].absolute_path)
            raise OutputError(f"output does not match the schema at {where}: {errors[0].message}")
        return data


def check_bounds(schema: dict[str, Any]) -> None:
    """SchemaError unless an inline schema is within what the gateway runs for a caller: its
    size and depth, refs only inside it, and patterns RE2 compiles. Cheap (no draft check, no
    compile), so a request body can be checked as it is read."""
    if (depth := _depth(schema)) > MAX_SCHEMA_DEPTH:
        raise SchemaError(_too_deep(f"{depth} levels"))
    if (size := len(_normalize(schema))) > MAX_SCHEMA_CHARS:
        raise SchemaError(
            f"the schema has {size:,} characters of JSON; the limit is {MAX_SCHEMA_CHARS:,}",
            hint="move long descriptions into the task's instructions",
        )
    for pointer, node in _schema_nodes(schema):
        for keyword in _REF_KEYWORDS:
            ref = node.get(keyword)
            if isinstance(ref, str) and not ref.startswith("#"):
                raise SchemaError(
                    f"{pointer or '(root)'}: {keyword} {ref!r} points outside the schema; only "
                    "refs inside it ('#/$defs/...') are resolved",
                    hint="put the referenced schema under $defs and refer to '#/$defs/NAME'",
                )
        patterns = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        if isinstance(node.get("patternProperties"), dict):
            patterns += list(node["patternProperties"])
        for pattern in patterns:
            try:
                _re2(pattern)
            except SchemaError as exc:
                raise SchemaError(f"{pointer or '(root)'}: {exc.message}", hint=exc.hint) from None
    if (loop := _ref_loop(schema)) is not None:
        raise SchemaError(
            f"{loop or '(root)'}: the schema's $refs loop without end (a $ref that comes back to "
            "itself without descending into a property or an item: no value can satisfy it)",
            hint="give the recursion a base case under properties or items",
        )


def refuse_unenforced(schema: dict[str, Any]) -> None:
    """SchemaError if decoding would ignore a keyword of `schema`: what `strict=True` refuses,
    after `check_bounds`. Cheap, so a request body can be checked as it is read."""
    check_bounds(schema)
    unenforced: list[str] = []
    _decoding_form(schema, "", unenforced, _ignored_in(schema))
    _refuse(unenforced)


def _refuse(unenforced: list[str]) -> None:
    if unenforced:
        more = f" (+{len(unenforced) - 1} more)" if len(unenforced) > 1 else ""
        raise SchemaError(
            f"xgrammar cannot enforce this schema: {unenforced[0].split(';')[0]}{more}",
            hint="leave out strict to accept it: such keywords are then checked after decoding",
        )


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


def _schema_nodes(schema: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object in `schema` with its JSON pointer, leaving out data keywords' values (an
    enum member shaped like {"$ref": ...} is data). Without recursion (depth is checked after)."""
    stack: list[tuple[str, Any]] = [("", schema)]
    while stack:
        pointer, node = stack.pop()
        if isinstance(node, dict):
            yield pointer, node
            stack.extend(
                (f"{pointer}/{_escape(str(key))}", value)
                for key, value in node.items()
                if key not in _DATA_KEYWORDS
            )
        elif isinstance(node, list):
            stack.extend((f"{pointer}/{i}", value) for i, value in enumerate(node))


# Keywords whose subschemas apply to the same value as their parent: a cycle through them and
# $refs only never reaches a smaller value, so validating anything recurses forever.
_IN_PLACE = ("allOf", "anyOf", "oneOf", "not", "if", "then", "else")


def _ref_loop(schema: dict[str, Any]) -> str | None:
    """The pointer of a node on a cycle of $refs and in-place keywords, or None."""
    nodes = dict(_schema_nodes(schema))
    edges: dict[str, list[str]] = {}
    for pointer, node in nodes.items():
        ref = node.get("$ref")
        targets = [ref[1:]] if isinstance(ref, str) and ref[1:] in nodes and ref[:1] == "#" else []
        for keyword in _IN_PLACE:
            value = node.get(keyword)
            if isinstance(value, dict):
                targets.append(f"{pointer}/{keyword}")
            elif isinstance(value, list):
                targets += [
                    f"{pointer}/{keyword}/{i}" for i, v in enumerate(value) if isinstance(v, dict)
                ]
        edges[pointer] = targets
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in edges:
        if start in state:
            continue
        stack = [(start, iter(edges[start]))]
        state[start] = 1
        while stack:
            pointer, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[pointer] = 2
                stack.pop()
            elif state.get(child) == 1:
                return child
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(edges[child])))
    return None


def _too_deep(how_deep: str) -> str:
    return f"the schema is nested too deeply ({how_deep}; the limit is {MAX_SCHEMA_DEPTH})"


def _check_draft(schema: dict[str, Any]) -> None:
    """Valid under the draft its `$schema` names (2020-12 when it names none)."""
    import jsonschema

    try:
        _draft(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise SchemaError(f"not a valid JSON schema: {exc.message}") from exc


# What xgrammar 0.2 accepts but ignores while decoding, as SGLang's detector lists it
# (sglang/srt/constrained/json_schema_validation.py); SGLang refuses a schema that has any.
_IGNORED_KEYWORDS = (
    "contains",
    "dependentRequired",
    "dependentSchemas",
    "else",
    "if",
    "maxContains",
    "minContains",
    "multipleOf",
    "not",
    "then",
    "uniqueItems",
)
_XGRAMMAR_FORMATS = frozenset(
    {
        "date",
        "date-time",
        "duration",
        "email",
        "hostname",
        "ipv4",
        "ipv6",
        "json-pointer",
        "relative-json-pointer",
        "time",
        "uri",
        "uri-reference",
        "uri-template",
        "uuid",
    }
)
_ONE_SUBSCHEMA = (
    "additionalItems",
    "additionalProperties",
    "contentSchema",
    "items",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
)
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
_SUBSCHEMA_MAPS = ("$defs", "definitions", "patternProperties", "properties", "dependencies")


def _decoding_form(node: Any, pointer: str, unenforced: list[str], ignored: tuple[str, ...]) -> Any:
    """`node` less what xgrammar ignores while decoding, each drop noted in `unenforced`.

    Dropping an assertion only widens what decoding allows; the whole schema checks it after.
    Walks schema positions only, so a property named "not" stays."""
    if not isinstance(node, dict):
        return node
    where = pointer or "(root)"
    out = dict(node)
    for key in ignored:
        if key in out:
            del out[key]
            unenforced.append(f"{where}: {key} is not enforced while decoding; {_after(key)}")
    if _describes_string(out):
        fmt = out.get("format")
        if isinstance(fmt, str) and fmt not in _XGRAMMAR_FORMATS:
            del out["format"]
            unenforced.append(
                f"{where}: format {fmt!r} is not enforced while decoding; {_after(fmt)}"
            )
        # xgrammar enforces one of pattern, format and length bounds; the most specific stays.
        kept, drop = "", tuple[str, ...]()
        if "pattern" in out:
            kept, drop = "pattern", ("format", "minLength", "maxLength")
        elif "format" in out:
            kept, drop = "format", ("minLength", "maxLength")
        for key in (k for k in drop if k in out):
            value = out.pop(key)
            what, after = (
                (f"format {value!r}", _after(value)) if key == "format" else (key, _after(key))
            )
            unenforced.append(
                f"{where}: {what} is not enforced while decoding (xgrammar enforces only the "
                f"{kept} of this string); {after}"
            )
    for key in _ONE_SUBSCHEMA:
        if isinstance(out.get(key), dict):
            out[key] = _decoding_form(out[key], f"{pointer}/{key}", unenforced, ignored)
    for key in _SUBSCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [
                _decoding_form(sub, f"{pointer}/{key}/{i}", unenforced, ignored)
                for i, sub in enumerate(out[key])
            ]
    for key in _SUBSCHEMA_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {
                name: _decoding_form(sub, f"{pointer}/{key}/{_escape(name)}", unenforced, ignored)
                for name, sub in out[key].items()
            }
    if isinstance(out.get("items"), list) and "prefixItems" not in out:
        # Draft 7's tuple form, which xgrammar reads only as 2020-12's prefixItems (+ items).
        out["prefixItems"] = out.pop("items")
        if "additionalItems" in out:
            out["items"] = out.pop("additionalItems")
    return out


def _ignored_in(schema: dict[str, Any]) -> tuple[str, ...]:
    """SGLang's list, plus `dependencies` where the schema's draft (4 to 7) has it: xgrammar
    ignores it as well, and SGLang's detector does not look for it."""
    legacy = "dependencies" in _draft(schema).VALIDATORS
    return _IGNORED_KEYWORDS + (("dependencies",) if legacy else ())


def _draft(schema: dict[str, Any]) -> Any:
    """The validator class of the draft `$schema` names; 2020-12 if it names none we know."""
    import jsonschema

    default = jsonschema.Draft202012Validator
    named = schema.get("$schema")
    return (
        jsonschema.validators.validator_for(schema, default) if isinstance(named, str) else default
    )


def _describes_string(node: dict[str, Any]) -> bool:
    types = node.get("type")
    return types is None or types == "string" or (isinstance(types, list) and "string" in types)


def _after(keyword_or_format: str) -> str:
    """Whether the validator checks a dropped keyword (all of them) or format (those it knows)."""
    known = (*_IGNORED_KEYWORDS, "dependencies", "minLength", "maxLength")
    known += tuple(_format_checker().checkers)
    if keyword_or_format in known:
        return "checked after"
    return "not checked after either (no checker for this format)"


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def _pointer(path: Any) -> str:
    return "".join(f"/{_escape(str(part))}" for part in path) or "(root)"


def _multiple_of(validator: Any, divisor: Any, instance: Any, schema: Any) -> Iterator[Any]:
    """multipleOf in decimal: jsonschema divides floats, and 19.99 is then not a multiple of
    0.01 (1998.9999999999998 is no integer), which would fail every price a model writes."""
    import jsonschema

    if not validator.is_type(instance, "number"):
        return
    with localcontext() as exact:
        exact.prec = 200
        try:
            multiple = Decimal(repr(instance)) % Decimal(repr(divisor)) == 0
        except InvalidOperation:  # NaN, infinity
            multiple = False
    if not multiple:
        yield jsonschema.ValidationError(f"{instance!r} is not a multiple of {divisor!r}")


@lru_cache(maxsize=1024)
def _re2(pattern: str) -> Any:
    """`pattern` compiled by RE2 (once per pattern), or a SchemaError naming it."""
    try:
        import re2
    except ImportError as exc:  # the LAN-client install
        raise SchemaError(
            "checking a pattern needs the server install",
            hint="pip install 'forkpoint[server]', or let the gateway check it",
        ) from exc
    options = re2.Options()
    options.log_errors = False  # RE2 would print every refused pattern on stderr
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise SchemaError(
            f"pattern {pattern[:200]!r} cannot run in linear time ({reason}); "
            "backreferences, lookarounds and repetitions over 1000 are refused",
            hint="rewrite the pattern without them",
        ) from None


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    """jsonschema's `pattern` (a search, as ECMA-262 and `re.search` do), on RE2."""
    import jsonschema

    if validator.is_type(instance, "string") and not _re2(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: dict[str, Any], instance: Any, schema: Any
) -> Iterator[Any]:
    """jsonschema's `patternProperties`, on RE2."""
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        compiled = _re2(pattern)
        for name, value in instance.items():
            if compiled.search(name):
                yield from validator.descend(value, subschema, path=name, schema_path=pattern)


def _unique_items(validator: Any, unique: Any, instance: Any, schema: Any) -> Iterator[Any]:
    """`uniqueItems` by hashing each item's canonical form: linear, where jsonschema compares
    pairs of unsortable items (objects), quadratic in the array."""
    import jsonschema

    if not unique or not validator.is_type(instance, "array"):
        return
    seen: set[Any] = set()
    for item in instance:
        key = _canonical(item)
        if key in seen:
            yield jsonschema.ValidationError(f"{instance!r} has non-unique elements")
            return
        seen.add(key)


def _canonical(value: Any) -> Any:
    """A hashable form equal exactly when JSON Schema calls two values equal: 1 and 1.0 alike,
    true and 1 not, objects by their members whatever their order."""
    if isinstance(value, bool) or value is None:
        return ("literal", value)
    if isinstance(value, (int, float)):
        return ("number", value)  # 1 == 1.0 and hash(1) == hash(1.0)
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, list):
        return ("array", tuple(_canonical(item) for item in value))
    if isinstance(value, dict):
        return ("object", frozenset((name, _canonical(item)) for name, item in value.items()))
    return ("other", repr(value))


def _is_url(value: object) -> bool:
    if not isinstance(value, str):
        return True  # format applies to strings only
    parts = urlsplit(value)
    return bool(parts.scheme and (parts.netloc or parts.scheme in ("mailto", "urn", "data")))


@lru_cache(maxsize=1)
def _format_checker() -> Any:
    """jsonschema's format checks, plus 'url' and 'uri', which real schemas use and xgrammar
    may leave to us (a 'uri' string under a pattern), but jsonschema checks only with rfc3987."""
    import jsonschema

    checker = jsonschema.FormatChecker()
    for name in ("url", "uri"):
        if name not in checker.checkers:
            checker.checks(name)(_is_url)
    return checker


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
    try:  # after _decoding_form this never fires, unless SGLang's detector learned more
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
