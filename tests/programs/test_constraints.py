"""The one Pydantic/JSON-schema → xgrammar constraint module."""

import json
from typing import Literal

import pytest
from pydantic import BaseModel, Field, field_validator

from forkpoint.programs.constraints import Constraint
from forkpoint.programs.errors import OutputError, SchemaError


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
        ({"type": "integer", "multipleOf": 3}, "multipleOf would be ignored"),
        ({"type": "array", "uniqueItems": True}, "uniqueItems would be ignored"),
    ],
    ids=["broken-json", "not-an-object", "bad-type", "multipleOf", "uniqueItems"],
)
def test_a_schema_xgrammar_cannot_enforce_is_rejected_with_the_reason(schema, reason):
    with pytest.raises(SchemaError, match=reason):
        Constraint.from_schema(schema)


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
