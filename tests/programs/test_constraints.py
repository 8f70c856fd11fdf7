"""The one Pydantic/JSON-schema → xgrammar constraint module."""

import json
from typing import Literal

import pytest
from pydantic import BaseModel, Field, field_validator

from forkpoint.errors import OutputError, SchemaError
from forkpoint.programs.constraints import Constraint, check_bounds, refuse_unenforced


class Line(BaseModel):
    description: str = Field(max_length=80, description="What was bought.")
    amount: float


class Order(BaseModel):
    order_id: str = Field(max_length=20)
    status: Literal["open", "shipped"]
    lines: list[Line] = Field(max_length=5)
    note: str | None = None

    @field_validator("order_id")
    @classmethod
    def must_start_with_o(cls, value: str) -> str:
        if not value.startswith("O-"):
            raise ValueError("order ids start with O-")
        return value


def test_a_pydantic_model_becomes_a_compiled_schema_string():
    constraint = Constraint.from_model(Order)
    schema = json.loads(constraint.schema_json)
    assert schema["properties"]["lines"]["maxItems"] == 5
    assert constraint.schema == schema
    assert len(constraint.key) == 16


def test_property_order_is_kept_because_the_grammar_emits_properties_in_that_order():
    constraint = Constraint.from_model(Order)
    assert list(constraint.schema["properties"]) == ["order_id", "status", "lines", "note"]
    same = Constraint.from_schema(Order.model_json_schema())
    assert same.key == constraint.key


def test_output_validates_back_into_the_model():
    order = Constraint.from_model(Order).validate(
        '{"order_id": "O-1", "status": "open", "lines": [{"description": "tea", "amount": 2.5}]}'
    )
    assert isinstance(order, Order)
    assert order.lines[0].amount == 2.5


def test_a_pydantic_validator_failure_is_an_output_error_naming_the_field():
    with pytest.raises(OutputError, match="order_id"):
        Constraint.from_model(Order).validate('{"order_id": "X", "status": "open", "lines": []}')


def test_inline_schema_output_is_checked_with_a_json_schema_validator():
    constraint = Constraint.from_schema(
        {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    )
    assert constraint.validate('{"n": 3}') == {"n": 3}
    with pytest.raises(OutputError, match="'n' is a required property"):
        constraint.validate("{}")
    with pytest.raises(OutputError, match="not JSON"):
        constraint.validate('{"n": ')


@pytest.mark.parametrize(
    ("schema", "reason"),
    [
        ('{"type": "object", "properties": {', "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ({"type": "strin"}, "not a valid JSON schema"),
        ({"type": "array", "items": {"type": "integer"}, "minItems": 5, "maxItems": 2}, "5 > 2"),
        (
            {"type": "array", "prefixItems": [{"type": "integer"}], "items": False, "minItems": 3},
            "additional items are not allowed",
        ),
        ({"type": "string", "pattern": "a\u0000b"}, "null characters"),
        ({"properties": {"a": {"$ref": "#/$defs/missing"}}}, "Cannot find field"),
    ],
    ids=["broken-json", "not-an-object", "bad-type", "min>max", "min>items", "nul", "bad-ref"],
)
def test_a_schema_xgrammar_cannot_compile_is_rejected_with_the_reason(schema, reason):
    with pytest.raises(SchemaError, match=reason):
        Constraint.from_schema(schema)


SITE = {
    "type": "object",
    "properties": {
        "site": {"type": "string", "format": "url", "maxLength": 100},
        "count": {"type": "integer", "multipleOf": 5},
        "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "uniqueItems": True},
        "code": {"type": "string", "pattern": "^[A-Z]+$", "minLength": 2, "maxLength": 4},
        "not": {"not": {"const": "none"}, "type": "string", "maxLength": 10},
    },
    "required": ["site"],
    "if": {"required": ["count"]},
    "then": {"required": ["tags"]},
}


def test_keywords_xgrammar_ignores_are_accepted_with_a_warning_naming_each_and_where():
    assert Constraint.from_schema(SITE).warnings[:8] == [
        "(root): if is not enforced while decoding; checked after",
        "(root): then is not enforced while decoding; checked after",
        "/properties/site: format 'url' is not enforced while decoding; checked after",
        "/properties/count: multipleOf is not enforced while decoding; checked after",
        "/properties/tags: uniqueItems is not enforced while decoding; checked after",
        "/properties/code: minLength is not enforced while decoding (xgrammar enforces only the "
        "pattern of this string); checked after",
        "/properties/code: maxLength is not enforced while decoding (xgrammar enforces only the "
        "pattern of this string); checked after",
        "/properties/not: not is not enforced while decoding; checked after",
    ]


def test_the_runtime_decodes_without_the_ignored_keywords_and_sglang_accepts_that_schema():
    from sglang.srt.constrained.json_schema_validation import validate_xgrammar_json_schema

    constraint = Constraint.from_schema(SITE)
    decoding = constraint.decoding_schema
    assert decoding == json.loads(constraint.schema_json)
    validate_xgrammar_json_schema(decoding)  # what SGLang's server runs before compiling
    assert "if" not in decoding and "then" not in decoding
    assert decoding["properties"]["site"] == {"type": "string", "maxLength": 100}
    assert decoding["properties"]["code"] == {"type": "string", "pattern": "^[A-Z]+$"}
    assert list(decoding["properties"]) == list(SITE["properties"])  # a property named "not" stays
    assert constraint.schema == SITE  # the whole schema: listing, field guide, validation
    assert constraint.key != Constraint.from_schema({**SITE, "if": {}}).key


GOOD = {"site": "https://example.org", "count": 10, "tags": ["a"], "code": "AB", "not": "x"}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"site": "example"}, "at /site: 'example' is not a 'url'"),
        ({"count": 12}, "at /count: 12 is not a multiple of 5"),
        ({"tags": ["a", "a"]}, "at /tags: .* has non-unique elements"),
        ({"code": "ABCDE"}, "at /code: 'ABCDE' is too long"),
        ({"not": "none"}, "at /not: .* should not be valid"),
        ({"tags": None}, "tags"),  # if count then tags: dropping the key trips then/required
    ],
    ids=["format", "multipleOf", "uniqueItems", "pattern+maxLength", "not", "if-then"],
)
def test_an_answer_breaking_a_keyword_decoding_ignored_does_not_validate(change, reason):
    constraint = Constraint.from_schema(SITE)
    assert constraint.validate(json.dumps(GOOD)) == GOOD
    answer = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    with pytest.raises(OutputError, match=reason):
        constraint.validate(json.dumps(answer))


def test_multipleof_is_checked_in_decimal_so_prices_in_cents_validate():
    constraint = Constraint.from_schema({"type": "number", "multipleOf": 0.01})
    for price in ("19.99", "0.07", "4.35", "12", "1e3"):
        constraint.validate(price)
    with pytest.raises(OutputError, match="12.345 is not a multiple of 0.01"):
        constraint.validate("12.345")


def test_strict_refuses_what_decoding_would_ignore_as_before():
    for schema, reason in [
        ({"type": "integer", "multipleOf": 3}, "multipleOf is not enforced"),
        ({"type": "array", "uniqueItems": True}, "uniqueItems is not enforced"),
        (SITE, r"\(root\): if is not enforced while decoding \(\+7 more\)"),
    ]:
        with pytest.raises(SchemaError, match=reason):
            Constraint.from_schema(schema, strict=True)
    bounded = {"type": "string", "format": "date", "maxLength": 5}  # format and length: both
    assert "maxLength" in Constraint.from_schema(bounded).warnings[0]
    assert Constraint.from_schema({"type": "string", "maxLength": 5}, strict=True).warnings == []


def test_a_format_no_validator_knows_says_it_is_not_checked_after_either():
    constraint = Constraint.from_schema({"type": "string", "format": "color", "maxLength": 9})
    assert constraint.warnings == [
        "(root): format 'color' is not enforced while decoding; not checked after either "
        "(no checker for this format)"
    ]
    assert constraint.validate('"blue"') == "blue"


def test_draft_07_dependencies_which_xgrammar_ignores_too_is_warned_and_checked_after():
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "dependencies": {"a": ["b"]},
    }
    constraint = Constraint.from_schema(schema)
    assert (
        constraint.warnings[0]
        == "(root): dependencies is not enforced while decoding; checked after"
    )
    assert "dependencies" not in constraint.schema_json
    with pytest.raises(OutputError, match="'b' is a dependency of 'a'"):
        constraint.validate('{"a": 1}')
    with pytest.raises(SchemaError, match="dependencies is not enforced"):
        Constraint.from_schema(schema, strict=True)


@pytest.mark.parametrize("named", [[], 5, {"a": 1}])
def test_a_dollar_schema_that_is_no_string_is_a_schema_error_not_a_crash(named):
    schema = {"$schema": named, "type": "integer", "multipleOf": 2}
    with pytest.raises(SchemaError, match="not a valid JSON schema"):
        Constraint.from_schema(schema)
    with pytest.raises(SchemaError, match="multipleOf is not enforced"):
        refuse_unenforced(schema)  # what a strict request body runs first


def test_a_dollar_schema_naming_no_draft_we_know_means_2020_12():
    schema = {"$schema": "https://example.org/no-such-draft", "type": "integer", "multipleOf": 2}
    assert Constraint.from_schema(schema).validate("4") == 4


def test_a_draft_07_schema_is_checked_and_validated_as_draft_07():
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {"pair": {"type": "array", "items": [{"type": "integer"}], "maxItems": 2}},
    }
    constraint = Constraint.from_schema(schema)
    assert constraint.validate('{"pair": [1, 2]}') == {"pair": [1, 2]}
    with pytest.raises(OutputError, match="'x' is not of type 'integer'"):
        constraint.validate('{"pair": ["x"]}')


def test_unbounded_strings_and_arrays_are_flagged_bounded_ones_are_not():
    constraint = Constraint.from_schema(
        {
            "type": "object",
            "properties": {
                "free": {"type": "string"},
                "tags": {"type": "array", "items": {"type": "string", "maxLength": 10}},
                "kind": {"enum": ["a", "b"]},
                "day": {"type": "string", "format": "date"},
            },
        }
    )
    assert constraint.warnings == [
        "$.free: string without maxLength (a model can run on until max tokens)",
        "$.tags: array without maxItems (a model can run on until max tokens)",
    ]


def test_oneof_is_flagged_because_xgrammar_enforces_it_as_anyof():
    constraint = Constraint.from_schema({"oneOf": [{"type": "integer"}, {"type": "number"}]})
    assert any("oneOf is enforced as anyOf" in w for w in constraint.warnings)


def nested(levels: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


def test_a_schema_nested_beyond_the_limit_is_a_schema_error_not_a_recursion_error():
    assert Constraint.from_schema(nested(31)).schema == nested(31)  # 63 levels of JSON
    as_text = '{"type": "object", "properties": {"a": ' * 1000 + '{"type": "string"}' + "}}" * 1000
    for too_deep in (nested(32), nested(400), as_text):
        with pytest.raises(SchemaError, match="the schema is nested too deeply"):
            Constraint.from_schema(too_deep)


def test_a_multipleof_breach_is_re_asked_then_recorded_invalid_not_ok(monkeypatch):
    """The extractor's own loop, with the runtime faked in-process (no server): the schema it
    sends has no multipleOf, and an answer breaking it is re-asked, then recorded `invalid`."""
    from types import SimpleNamespace

    from forkpoint.programs import extractor as extractor_module
    from forkpoint.programs.documents import long_documents
    from forkpoint.programs.documents.document import from_text
    from forkpoint.programs.tasks.task import schema_task

    sent: list[str] = []
    answers = ['{"count": 12}', '{"count": 13}', '{"count": 12}', '{"count": 15}']

    def fake_run_extract(endpoint, *, json_schema, **_):
        sent.append(json_schema)
        return answers[len(sent) - 1], {"completion_tokens": 4, "finish_reason": {"type": "stop"}}

    fake_program = SimpleNamespace(
        connect=lambda url: SimpleNamespace(model_info={}), run_extract=fake_run_extract
    )
    monkeypatch.setattr(extractor_module, "program", fake_program)
    monkeypatch.setattr(extractor_module, "ServedModel", SimpleNamespace(from_info=lambda *a: 0))
    monkeypatch.setattr(extractor_module, "check_served_format", lambda *a: "chatml")
    monkeypatch.setattr(
        long_documents, "TokenCounter", lambda url: SimpleNamespace(context_length=lambda: None)
    )
    schema = {"type": "object", "properties": {"count": {"type": "integer", "multipleOf": 5}}}
    doc = from_text("d.txt", "five apples")

    def extract(max_reasks):
        task = schema_task(schema, "Count the apples.", max_reasks=max_reasks)
        target = extractor_module.Target("http://fake", "chatml")
        return extractor_module.Extractor(target, task).extract(0, doc)

    invalid = extract(max_reasks=1)
    assert (invalid.status, invalid.attempts) == ("invalid", 2)
    assert "13 is not a multiple of 5" in (invalid.error or "")
    assert all("multipleOf" not in s for s in sent)
    ok = extract(max_reasks=1)
    assert (ok.status, ok.attempts, ok.data) == ("ok", 2, {"count": 15})


def test_a_recursive_schema_with_a_base_case_is_within_bounds_and_a_bare_loop_is_not():
    tree = {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
            }
        },
        "$ref": "#/$defs/node",
    }
    check_bounds(tree)  # descends into items: every finite tree satisfies it
    with pytest.raises(SchemaError, match=r"/\$defs/x: the schema's \$refs loop without end"):
        check_bounds({"$defs": {"x": {"allOf": [{"$ref": "#/$defs/x"}]}}, "$ref": "#/$defs/x"})
