"""Copy fields (#20): string values that can only be spans of the document being extracted.

A task's JSON schema becomes xgrammar's own grammar for it, except that each copy field's string
value is one rule per maxLength (`fkcopy40_value`; `fkcopy0_value` without one), defined per
document as the document's substring language. The schema side is built once per task
(`CopyGrammar.from_schema`); each document then only appends the rules of its suffix automata
(`CopyGrammar.for_document`), linear in the document's length.
The result is EBNF text, what SGLang's `ebnf` sampling parameter takes.

Copy paths name a field from the answer's root: property names joined by ".", and "[]" after a
name for every item of that array ("invoice_number", "line_items[].description", "tags[]"; "[]"
alone or "[].name" when the root itself is an array). They resolve through "properties", an
array's "items", local "$ref"s (pydantic's "#/$defs/..."), one-element "allOf" wrappers, and
every non-null branch of "anyOf"/"oneOf" (so `str | None` stays nullable). A property name with
".", "[" or "]" in it cannot be named. A "$ref" on the path is inlined there, so only that use of
the definition becomes a copy field, not every other field that refers to it.

Matching rules: the value is a non-empty, exact, contiguous substring of the document, written
the way `json.dumps(..., ensure_ascii=False)` writes it (quotes, backslashes and control
characters escaped, everything else as-is; "\\/" or "\\u00e9" for "/" or "é" are refused).
Leading and trailing whitespace is neither trimmed nor required. A value that is not one span
of the document (a name split over two lines with a hyphen, a date to reformat, a number to
read) is not a copy field. `pattern`, `format`, `enum` and `const` are refused.

Length: a copy field's `maxLength` M (characters, as JSON Schema counts them) bounds the span
while decoding. The exact language "spans of at most M characters" needs about M states per
character of the document (7 s of compile for 500 characters at M = 80), so the grammar takes
the spans of the document's windows instead: windows of M characters, one starting every M/8.
No value longer than M is possible; every span of up to M − M/8 characters is possible wherever
it is (a span of 35 characters for M = 40, 70 for M = 80); a longer one only if it lies within
one window. The cost is ~3–5 times the unbounded rules' (0.09 s against 0.02 s for a
256-character signature with M = 40) and grows faster than the document: an invoice of 4,900
characters with three bounded fields compiled in 106 s (0.56 s unbounded). So windows are used
only while they total at most `WINDOW_BUDGET` characters (8 per character of the document per
distinct bound: documents up to ~660 characters with three bounds, 2,000 with one); past that,
every copy field of the document is any span of it, and maxLength is checked when the answer is
validated (and re-asked), as `minLength` always is.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from forkpoint.errors import DocumentError, SchemaError, TaskError
from forkpoint.programs.grammar_workers import WORKERS

# Stands in for each copy field's value while xgrammar turns the schema into EBNF: a `const`
# becomes exactly one quoted literal, which is then swapped for a reference to the rule of the
# field's bound, `fkcopy{maxLength}_value` (`fkcopy0_value`: no maxLength), defined per document.
_MARKER = "forkpoint0copy0field0value"
_MARKER_BOUNDED = re.compile(re.escape('"\\"' + _MARKER) + r"(\d*)" + re.escape('\\""'))
# Rules added here: `fkcopy{bound}_value`, and its states `fk{bound}_{number in hex}`; xgrammar's
# own are root*, defs_*, basic_*.
_RULE = "fkcopy"
_PREFIX = "fk"
_WINDOW_STEPS = 8  # a bounded copy field's windows start every maxLength / 8 characters
WINDOW_BUDGET = 16_000  # window characters per document, over all bounds (see "Length")
# The longest text a copy grammar is built for: its EBNF is ~55 bytes per document character
# (a 200k-character document: ~11 MB, under a second of CPU with the GIL held, then compiled by
# SGLang per document in time that grows with the square of its rules, perf/results/
# copy-compile-*). A longer text (or chunk) decodes with the task's plain schema; its copy
# fields' values are still grounded in the text after decoding.
MAX_COPY_TEXT_CHARS = 20_000
# A document at least this long has its grammar built by a worker process (grammar_workers.py)
# off the caller's GIL; a shorter one in place (~1.5 ms or less, not worth the round trip).
WORKER_MIN_CHARS = 1_000
_PATH = re.compile(r"^(?:[^.\[\]]+(?:\[\])*|(?:\[\])+)(?:\.[^.\[\]]+(?:\[\])*)*$")
_NOT_A_SPAN = ("enum", "const", "pattern", "format")
_MAX_REF_HOPS = 32
_NAME_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
COPY_KEYWORD = "x-forkpoint-copy"  # `true` on a string property of an inline schema


@dataclass(frozen=True)
class CopyGrammar:
    """A schema's grammar with every copy field's value left to one rule, defined per document."""

    base_ebnf: str
    copy_fields: tuple[str, ...]
    bounds: tuple[int, ...] = ()  # the copy fields' maxLengths (0: none), each once

    @classmethod
    def from_schema(
        cls, schema: dict[str, Any], copy_fields: Iterable[str], *, any_whitespace: bool = True
    ) -> CopyGrammar:
        """Check the copy paths against `schema` and compile it (raises TaskError/SchemaError).

        `schema` is one that `Constraint` already accepted; this compiles it the same way SGLang's
        xgrammar backend does (strict mode; `any_whitespace=False` is its
        `--constrained-json-disable-any-whitespace`, the profiles' `compact_json`). Fields marked
        in the schema with the keyword (`"x-forkpoint-copy": true`) are copy fields too.
        """
        fields = check_copy_fields(schema, copy_fields)
        marked = copy.deepcopy(schema)
        for path in fields:
            marked = _mark(marked, _steps(path), path, root=marked)
        ebnf = _schema_ebnf(json.dumps(marked, ensure_ascii=False), any_whitespace)
        if re.search(rf"^{_PREFIX}", ebnf, flags=re.MULTILINE):
            raise SchemaError(
                f"xgrammar's grammar for this schema uses the rule prefix {_PREFIX!r}"
            )
        bounds = tuple(dict.fromkeys(int(b or 0) for b in _MARKER_BOUNDED.findall(ebnf)))
        ebnf = _MARKER_BOUNDED.sub(lambda m: _value_rule(int(m.group(1) or 0)), ebnf)
        if fields and (not bounds or _MARKER in ebnf):
            # xgrammar changed how it writes a const; refuse rather than leave a field unconstrained
            raise SchemaError("this xgrammar version writes copy fields in an unexpected form")
        return cls(base_ebnf=ebnf, copy_fields=fields, bounds=tuple(sorted(bounds)))

    @cached_property
    def key(self) -> str:
        """A stable identity for this grammar's schema side (the document grammar cache)."""
        return hashlib.sha256(self.base_ebnf.encode()).hexdigest()[:16]

    def for_document(self, document: str) -> str:
        """The complete EBNF for one document: every copy field a non-empty span of it, of at
        most its maxLength characters."""
        if not self.copy_fields:
            return self.base_ebnf
        lines = [self.base_ebnf.rstrip("\n")]
        built: set[int] = set()
        bounded = [b for b in self.bounds if 0 < b < len(document)]
        affordable = len(document) * _WINDOW_STEPS * len(bounded) <= WINDOW_BUDGET
        for bound in self.bounds:
            # a bound past the document's end, or windows past the budget: any span
            needed = bound if affordable and 0 < bound < len(document) else 0
            if needed not in built:
                built.add(needed)
                rules = substring_rules(
                    document, _value_rule(needed), max_length=needed, states=f"{_PREFIX}{needed}_"
                )
                lines.append(rules)
            if needed != bound:
                lines.append(f"{_value_rule(bound)} ::= {_value_rule(needed)}")
        return "\n".join(lines) + "\n"


class DocumentGrammars:
    """The grammars of recent documents by (task grammar, document sha256), least recently used
    dropped first: a re-ask, a chunk asked again or a document submitted again reuses its
    grammar (and SGLang, which caches compiled grammars by their text, its compile). Bounded in
    count and in characters, since a grammar is ~55 times its document. Thread-safe."""

    def __init__(self, max_grammars: int = 32, max_chars: int = 64_000_000) -> None:
        self.max_grammars, self.max_chars = max_grammars, max_chars
        self._grammars: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()

    def get(self, grammar: CopyGrammar, document: str) -> tuple[str | None, float]:
        """The document's EBNF, and the seconds spent building it now (0.0 when cached); None
        for a document over MAX_COPY_TEXT_CHARS (it decodes with the plain schema)."""
        if len(document) > MAX_COPY_TEXT_CHARS:
            return None, 0.0
        digest = hashlib.sha256(document.encode("utf-8", "surrogatepass")).hexdigest()
        key = (grammar.key, digest)
        with self._lock:
            if (ebnf := self._grammars.get(key)) is not None:
                self._grammars.move_to_end(key)
                return ebnf, 0.0
        started = time.perf_counter()
        # outside the lock: other documents build theirs
        if len(document) >= WORKER_MIN_CHARS:
            ebnf = WORKERS.build(grammar, document)
        else:
            ebnf = grammar.for_document(document)
        seconds = time.perf_counter() - started
        with self._lock:
            if key not in self._grammars:
                self._grammars[key] = ebnf
                self._chars += len(ebnf)
            while self._grammars and (
                len(self._grammars) > self.max_grammars or self._chars > self.max_chars
            ):
                self._chars -= len(self._grammars.popitem(last=False)[1])
        return ebnf, seconds

    def __len__(self) -> int:
        return len(self._grammars)


def check_copy_fields(schema: dict[str, Any], copy_fields: Iterable[str]) -> tuple[str, ...]:
    """The copy paths, `copy_fields` then the keyword's, each checked against `schema` without
    compiling it (pure Python: a task checks its copy fields where xgrammar is not installed)."""
    if isinstance(copy_fields, str):
        raise TaskError(f"copy fields must be a list of paths, not the string {copy_fields!r}")
    if _MARKER in json.dumps(schema, ensure_ascii=False):
        raise SchemaError(f"the schema contains {_MARKER!r}, a value reserved for copy fields")
    fields = tuple(dict.fromkeys([*copy_fields, *keyword_paths(schema)]))
    for path in fields:
        _mark(schema, _steps(path), path, root=schema)  # builds new nodes, never changes these
    return fields


def keyword_paths(schema: dict[str, Any]) -> list[str]:
    """The paths of the fields marked `"x-forkpoint-copy": true` in `schema`.

    A marked node reached through a "$ref" names every path that reaches it. A mark that no
    path reaches (under "additionalProperties", in an unused definition) or whose value is not
    `true` is a TaskError: a keyword that silently did nothing would leave a field unguarded.
    """
    marks = set(_keyword_pointers(schema, ""))
    if not marks:
        return []
    found: dict[str, None] = {}
    reached: set[str] = set()
    stack = deque([(schema, "", "", frozenset[str]())])  # breadth first: paths in schema order
    while stack:
        node, pointer, path, refs = stack.popleft()
        if not isinstance(node, dict):
            continue
        if isinstance(ref := node.get("$ref"), str) and ref.startswith("#") and ref not in refs:
            if pointer in marks:  # the keyword beside the $ref marks this use of it
                reached.add(pointer)
                found[path or "[]"] = None
                continue
            try:
                target = _pointer(schema, ref)
            except SchemaError:
                continue
            stack.append((target, ref[1:], path, refs | {ref}))
            continue
        if pointer in marks:
            reached.add(pointer)
            found[path] = None
            continue
        for name, sub in (node.get("properties") or {}).items():
            where = f"{pointer}/properties/{_escape(name)}"
            stack.append((sub, where, f"{path}.{name}" if path else name, refs))
        if isinstance(items := node.get("items"), dict):
            stack.append((items, f"{pointer}/items", f"{path}[]", refs))
        for key in ("anyOf", "oneOf", "allOf"):
            for i, sub in enumerate(node.get(key) or ()):
                stack.append((sub, f"{pointer}/{key}/{i}", path, refs))
    if unreached := sorted(marks - reached):
        raise TaskError(
            f"{COPY_KEYWORD!r} at {unreached[0] or '/'} marks no field of the answer",
            hint="put it on a string property reached from the root through properties/items",
        )
    if "" in found:
        raise TaskError(f"{COPY_KEYWORD!r} on the whole schema: mark string properties instead")
    return list(found)


def _keyword_pointers(node: Any, pointer: str, *, names: bool = False) -> list[str]:
    """JSON pointers of the schema nodes carrying the copy keyword (its value must be true).
    `names`: `node` maps names to schemas ("properties", "$defs"), where a key is no keyword."""
    found: list[str] = []
    if isinstance(node, dict):
        if COPY_KEYWORD in node and not names:
            if node[COPY_KEYWORD] is not True:
                raise TaskError(f"{COPY_KEYWORD!r} at {pointer or '/'} must be true")
            found.append(pointer)
        for key, sub in node.items():
            where, maps = f"{pointer}/{_escape(key)}", not names and key in _NAME_MAPS
            found += _keyword_pointers(sub, where, names=maps)
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            found += _keyword_pointers(sub, f"{pointer}/{i}")
    return found


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def copy_grammar(schema: dict[str, Any], copy_fields: Iterable[str], document: str) -> str:
    """The EBNF of `schema` in which each copy field's value is a non-empty span of `document`
    (of at most the field's maxLength characters)."""
    return CopyGrammar.from_schema(schema, copy_fields).for_document(document)


def substring_rules(document: str, name: str, *, max_length: int = 0, states: str = "") -> str:
    """EBNF rule `name`: a JSON string whose value is a non-empty substring of `document`; with
    `max_length`, one of the spans of its windows (see the module's "Length").

    One rule per state of the document's suffix automaton (named `states` + its number in hex,
    `name_` + it by default), each transition an alternative (the character as JSON writes it).
    Every path from the initial state spells a substring, so every state but the initial one
    may also close the string; the initial state has no incoming transitions, so leaving the
    closing quote out of it alone makes the value non-empty. The closing quote is an
    alternative inside each state, as in xgrammar's own string rule, rather than an empty
    alternative followed by a quote: with "" the compiler must look past the rule at every
    state, and a grammar compiled 4-5 times slower (SmolLM2's vocabulary, 4,000 characters:
    2.1 s of CPU against 0.55 s).

    xgrammar compiles one rule per state whatever the text looks like (it lifts nested choices
    into rules of their own), so the text is kept short rather than restructured: short rule
    names, no parentheses or spaces, each character's literal escaped once (~30 bytes a state,
    ~1.6 states a character).
    """
    if not document:
        raise DocumentError("the document is empty, so copy fields have nothing to copy")
    automaton = _suffix_automaton(_windows(document, max_length))
    prefix = states or f"{name}_"
    close = '"\\""'
    # a state without transitions is the end of the whole document: reaching it closes the string
    refs = [f"{prefix}{i:x}" if transitions else close for i, transitions in enumerate(automaton)]
    literals = {char: _ebnf_literal(_json_escaped(char)) for char in set(document)}
    first = "|".join(literals[char] + refs[target] for char, target in automaton[0].items())
    lines = [f"{name}::={close} {refs[0]}", f"{refs[0]}::={first}"]
    either = f"::={close}|"
    for ref, transitions in zip(refs[1:], automaton[1:], strict=True):
        if len(transitions) == 1:  # most states: one way on, or the end of the string
            [(char, target)] = transitions.items()
            lines.append(f"{ref}{either}{literals[char]}{refs[target]}")
        elif transitions:
            steps = [literals[char] + refs[target] for char, target in transitions.items()]
            lines.append(ref + either + "|".join(steps))
    return "\n".join(lines)


def _steps(path: str) -> list[str | None]:
    """A copy path as steps: a property name, or None for "every item of this array"."""
    if not isinstance(path, str) or not _PATH.match(path):
        raise TaskError(
            f"copy field {path!r} is not a field path",
            hint='join property names with ".", "[]" for array items: line_items[].description',
        )
    steps: list[str | None] = []
    for part in path.split("."):
        name = part.replace("[]", "")
        if name:
            steps.append(name)
        steps.extend([None] * part.count("[]"))
    return steps


def _mark(node: Any, steps: list[str | None], path: str, *, root: dict[str, Any]) -> Any:
    """`node` with the field at `steps` replaced by the copy marker (a new dict along the path)."""
    node = _resolved(node, path, root)
    for key in ("anyOf", "oneOf"):
        if isinstance(node.get(key), list):
            branches = [b if _is_null(b) else _mark(b, steps, path, root=root) for b in node[key]]
            if all(_is_null(b) for b in branches):
                raise TaskError(f"copy field {path!r} is always null in the schema")
            return {**node, key: branches}
    if not steps:
        return _marker(node, path)
    step, rest = steps[0], steps[1:]
    where = _where(path, steps)
    if step is None:
        items = node.get("items")
        if not isinstance(items, dict) or "array" not in _types(node):
            raise TaskError(f"copy field {path!r}: {where} is not an array of items")
        return {**node, "items": _mark(items, rest, path, root=root)}
    properties = node.get("properties")
    if not isinstance(properties, dict) or step not in properties:
        if "array" in _types(node):
            hint = 'it is an array: "[]" names its items, as in line_items[].description'
        elif isinstance(properties, dict):
            hint = "its properties: " + ", ".join(properties)
        else:
            hint = "it has no properties"
        raise TaskError(f"copy field {path!r}: {where} has no property {step!r}", hint=hint)
    marked = _mark(properties[step], rest, path, root=root)
    return {**node, "properties": {**properties, step: marked}}


def _resolved(node: Any, path: str, root: dict[str, Any]) -> dict[str, Any]:
    """`node` with local "$ref"s and one-element "allOf" wrappers merged into it."""
    for _ in range(_MAX_REF_HOPS):
        if not isinstance(node, dict):
            raise TaskError(f"copy field {path!r} goes through a schema that is not an object")
        if isinstance(ref := node.get("$ref"), str):
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            node = {**copy.deepcopy(_pointer(root, ref)), **siblings}
        elif isinstance(all_of := node.get("allOf"), list) and len(all_of) == 1:
            node = {**all_of[0], **{k: v for k, v in node.items() if k != "allOf"}}
        else:
            return node
    raise SchemaError(f"copy field {path!r}: more than {_MAX_REF_HOPS} $refs in a row")


def _pointer(root: dict[str, Any], ref: str) -> Any:
    if not ref.startswith("#"):
        raise SchemaError(f"only local $refs (#/...) are supported, not {ref!r}")
    node: Any = root
    for token in ref[1:].split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or token not in node:
            raise SchemaError(f"$ref {ref!r} points to nothing in the schema")
        node = node[token]
    return node


def _marker(node: dict[str, Any], path: str) -> dict[str, Any]:
    types = _types(node)
    if not types or not types <= {"string", "null"} or "string" not in types:
        what = " or ".join(sorted(types)) if types else "value without a string type"
        article = "an" if what[0] in "aeiou" else "a"
        raise TaskError(
            f"copy field {path!r} is {article} {what}, not a string: numbers, booleans and "
            "objects are read, not copied",
            hint="remove it from the copy fields, or make it a string",
        )
    if constrained := [k for k in _NOT_A_SPAN if k in node]:
        kind = "a date" if node.get("format") in ("date", "date-time", "time") else "a string"
        raise TaskError(
            f"copy field {path!r} is {kind} with {', '.join(constrained)}: a value of a fixed "
            "form is read, not copied",
            hint="remove it from the copy fields",
        )
    bound = node.get("maxLength")
    if isinstance(bound, bool) or not isinstance(bound, int) or bound < 1:
        bound = 0  # none (a maxLength of 0 or a bad one is left to validation)
    value = {"const": f"{_MARKER}{bound or ''}"}
    return {"anyOf": [value, {"type": "null"}]} if "null" in types else value


def _types(node: dict[str, Any]) -> set[str]:
    kind = node.get("type")
    return set(kind) if isinstance(kind, list) else {kind} if isinstance(kind, str) else set()


def _is_null(node: Any) -> bool:
    return isinstance(node, dict) and node.get("type") == "null"


def _where(path: str, steps_left: list[str | None]) -> str:
    """The part of `path` walked before `steps_left`, for error messages."""
    steps = _steps(path)
    walked = steps[: len(steps) - len(steps_left)]
    prefix = ".".join(step or "[]" for step in walked).replace(".[]", "[]")
    return repr(prefix) if prefix else "the root"


def _schema_ebnf(schema_json: str, any_whitespace: bool) -> str:
    try:
        import xgrammar
    except ImportError as exc:  # the LAN-client install
        raise SchemaError(
            "copy fields need the server install", hint="pip install 'forkpoint[server]'"
        ) from exc
    try:
        return str(xgrammar.Grammar.from_json_schema(schema_json, any_whitespace=any_whitespace))
    except (RuntimeError, ValueError, TypeError) as exc:
        raise SchemaError(f"xgrammar rejected the schema: {exc}") from exc


def _value_rule(bound: int) -> str:
    return f"{_RULE}{bound}_value"


def _windows(document: str, max_length: int) -> list[str]:
    """`document` whole (no bound, or one past its end), or its windows of `max_length`
    characters, one starting every max_length / 8 and the last ending at the document's end."""
    if not 0 < max_length < len(document):
        return [document]
    step = max(1, max_length // _WINDOW_STEPS)
    starts = list(range(0, len(document) - max_length + 1, step))
    if starts[-1] != len(document) - max_length:
        starts.append(len(document) - max_length)
    return [document[start : start + max_length] for start in starts]


def _suffix_automaton(texts: list[str]) -> list[dict[str, int]]:
    """The transitions of the (generalized) suffix automaton of `texts`: every path from state
    0 spells a substring of one of them, and every such substring has a path. At most twice as
    many states as there are characters in all of `texts`."""
    transitions: list[dict[str, int]] = [{}]
    link, length = [-1], [0]

    def clone(state: int, target: int, char: str) -> int:
        """A copy of `target` reached from `state` by `char`, `length[state] + 1` long."""
        copied = len(transitions)
        transitions.append(dict(transitions[target]))
        length.append(length[state] + 1)
        link.append(link[target])
        while state != -1 and transitions[state].get(char) == target:
            transitions[state][char] = copied
            state = link[state]
        link[target] = copied
        return copied

    for text in texts:
        last = 0
        for char in text:
            if (known := transitions[last].get(char)) is not None:  # seen in an earlier text
                last = known if length[last] + 1 == length[known] else clone(last, known, char)
                continue
            current = len(transitions)
            transitions.append({})
            length.append(length[last] + 1)
            link.append(0)
            state = last
            while state != -1 and char not in transitions[state]:
                transitions[state][char] = current
                state = link[state]
            if state != -1:
                target = transitions[state][char]
                link[current] = (
                    target if length[state] + 1 == length[target] else clone(state, target, char)
                )
            last = current
    return transitions


def _json_escaped(char: str) -> str:
    escaped = json.dumps(char, ensure_ascii=False)[1:-1]
    if "\ud800" <= char <= "\udfff":  # a lone surrogate cannot be UTF-8; JSON's \u form can
        escaped = json.dumps(char)[1:-1]
    return escaped


def _ebnf_literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
