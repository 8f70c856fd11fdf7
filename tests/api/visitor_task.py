"""The review page's browser test task (#28): a visitor's name, copied from the document (a
copy field: always a span of it, so always highlighted), and a badge number that must be
grounded but that no test document holds (its pattern, B-0000, never occurs in them), so
every document is certainly `needs_review`."""

from pydantic import BaseModel, Field

from forkpoint.programs import Example, ExtractionTask


class Visitor(BaseModel):
    name: str = Field(max_length=40, description="The visitor's full name, as written.")
    badge: str = Field(pattern=r"^B-[0-9]{4}$", description="The visitor's badge number.")


TASK = ExtractionTask(
    name="visitors",
    instructions="Extract the visitor's name and badge number.",
    output_model=Visitor,
    examples=(
        Example(
            "Visitor: Ann Lee (badge B-1234) signed in at 8:55.",
            Visitor(name="Ann Lee", badge="B-1234"),
        ),
    ),
    grounded_fields=("badge",),
    copy_fields=("name",),
    max_output_tokens=48,
)
