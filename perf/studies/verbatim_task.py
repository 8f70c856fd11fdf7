"""A task whose every field is copied verbatim from the document: the best case for drafting
from the document text (NGRAM with the job corpus). Used by perf/studies/speculation.py beside the
built-in tasks: `--task perf/studies/verbatim_task.py:TASK`."""

from pydantic import BaseModel, Field

from forkpoint.programs.tasks.task import Example, ExtractionTask


class Quotes(BaseModel):
    """Lines of an invoice, quoted exactly."""

    heading: str = Field(max_length=120, description="The invoice's first line, exactly.")
    issued: str = Field(max_length=120, description="The line that starts with 'Issued', exactly.")
    first_note: str = Field(max_length=400, description="The first sentence after 'Notes:'.")


EXAMPLE = """Invoice Z-00001-123 from Quarry Tools Ltd
Issued 2026-02-03; currency EUR.

- freight handling: 120.00
Total due: 120.00 EUR

Notes:
Goods delivered to the north warehouse under the annual contract.
Payment by transfer."""

TASK = ExtractionTask(
    name="invoice-quotes",
    description="Three lines of an invoice, copied exactly as written.",
    instructions="Copy the requested lines from the document exactly, character for character.",
    output_model=Quotes,
    examples=(
        Example(
            EXAMPLE,
            Quotes(
                heading="Invoice Z-00001-123 from Quarry Tools Ltd",
                issued="Issued 2026-02-03; currency EUR.",
                first_note="Goods delivered to the north warehouse under the annual contract.",
            ),
        ),
    ),
    max_output_tokens=256,
)
