"""A task as data: sent as JSON, rebuilt on the gateway with the same fork-point prefix."""

import pytest
from pydantic import BaseModel, Field, ValidationError

from forkpoint.errors import SchemaError, TaskError
from forkpoint.programs.prompt import task_prompt
from forkpoint.programs.tasks.registry import builtin_tasks
from forkpoint.programs.tasks.spec import MAX_EXAMPLES, ExampleSpec, TaskSpec
from forkpoint.programs.tasks.task import Example, ExtractionTask
from forkpoint.programs.templates import CHAT_FORMATS


@pytest.mark.parametrize("chat_format", sorted(CHAT_FORMATS))
@pytest.mark.parametrize("name", sorted(builtin_tasks()))
def test_a_task_sent_as_json_has_the_same_prefix_text_as_the_task_itself(name, chat_format):
    task = builtin_tasks()[name]
    wire = TaskSpec.from_task(task).model_dump_json(by_alias=True)
    rebuilt = TaskSpec.model_validate_json(wire).to_task()
    assert task_prompt(rebuilt, chat_format).prefix == task_prompt(task, chat_format).prefix
    assert rebuilt.constraint.schema_json == task.constraint.schema_json  # decoded the same
    assert (rebuilt.grounded_fields, rebuilt.max_output_tokens, rebuilt.max_reasks) == (
        task.grounded_fields,
        task.max_output_tokens,
        task.max_reasks,
    )
    assert (rebuilt.long_documents, rebuilt.copy_fields) == (task.long_documents, task.copy_fields)


class Order(BaseModel):
    number: str = Field(description="The order number as printed.")
    quantity: int = Field(ge=1)


def order_spec(**changes) -> TaskSpec:
    task = ExtractionTask(
        name="orders",
        instructions="Extract the order.",
        output_model=Order,
        examples=(Example("Order A-1, 3 crates.", Order(number="A-1", quantity=3)),),
    )
    return TaskSpec.from_task(task).model_copy(update=changes)


def test_an_example_the_schema_refuses_is_a_task_error_naming_it():
    spec = order_spec(examples=(ExampleSpec(document="Order B-2", output={"number": "B-2"}),))
    with pytest.raises(TaskError, match="example 0 .*quantity"):
        TaskSpec.model_validate(spec.model_dump(by_alias=True)).to_task()


def test_the_definition_is_bounded():
    body = order_spec().model_dump(by_alias=True)
    too_many = {**body, "examples": body["examples"] * (MAX_EXAMPLES + 1)}
    with pytest.raises(ValidationError, match="examples"):
        TaskSpec.model_validate(too_many)
    huge = {**body, "schema": {**body["schema"], "description": "x" * 70_000}}
    with pytest.raises(SchemaError, match="more than 64,000"):
        TaskSpec.model_validate(huge).to_task()
    with pytest.raises(ValidationError, match="extra"):
        TaskSpec.model_validate({**body, "validators": "import os"})


def test_the_key_names_the_content():
    assert order_spec().key == order_spec().key
    assert order_spec(instructions="Extract the order, carefully.").key != order_spec().key
