"""A user's own task, as a module `forkpoint extract --task-module` loads: few-shot example,
field descriptions, bounded fields; and NEVER, whose validator refuses every answer."""

from pydantic import BaseModel, Field, field_validator

from forkpoint.programs import Example, ExtractionTask


class Person(BaseModel):
    name: str = Field(max_length=40, description="The person's full name, as written.")
    email: str | None = Field(None, max_length=60, description="Their email address, if given.")


class Refused(Person):
    @field_validator("name")
    @classmethod
    def never(cls, name: str) -> str:
        raise ValueError("no name is valid here")


TASK = ExtractionTask(
    name="people",
    instructions="Extract the person who wrote or signed the document.",
    output_model=Person,
    examples=(
        Example(
            "Thanks, see you Monday.\n-- Ann Lee <ann@lumen.io>",
            Person(name="Ann Lee", email="ann@lumen.io"),
        ),
    ),
    max_output_tokens=64,
)

NEVER = ExtractionTask(
    name="people-refused",
    instructions="Extract the person who wrote or signed the document.",
    output_model=Refused,
    max_output_tokens=64,
    max_reasks=0,
)
