"""Contacts: a person's details from a signature, a letter or a meeting note."""

from pydantic import BaseModel, Field

from forkpoint.programs.tasks.task import Example, ExtractionTask


class Contact(BaseModel):
    """One person and how to reach them."""

    name: str = Field(max_length=80, description="The person's full name.")
    title: str | None = Field(None, max_length=80, description="Job title, if stated.")
    organization: str | None = Field(None, max_length=80, description="Company or institution.")
    email: str | None = Field(None, max_length=80, description="Email address, exactly as written.")
    phone: str | None = Field(None, max_length=40, description="Phone number, exactly as written.")
    city: str | None = Field(None, max_length=60, description="City of the address, if any.")


TASK = ExtractionTask(
    name="contacts",
    description="Name, title, organization, email, phone and city of one person.",
    instructions=(
        "You read email signatures, letters and notes and extract the contact details of the "
        "main person in them (the sender of a signature, the person a note is about). Copy "
        "email addresses and phone numbers character for character."
    ),
    output_model=Contact,
    examples=(
        Example(
            "Thanks again for the quick turnaround.\n\nBest regards,\nPriya Raman\n"
            "Senior Buyer | Halden Foods AS\nOslo, Norway\nT: +47 22 41 80 17\n"
            "priya.raman@haldenfoods.no",
            Contact(
                name="Priya Raman",
                title="Senior Buyer",
                organization="Halden Foods AS",
                email="priya.raman@haldenfoods.no",
                phone="+47 22 41 80 17",
                city="Oslo",
            ),
        ),
        Example(
            "Call notes 12 May: spoke with Daniel Osei from Accra Solar Cooperative about the "
            "inverter order. He prefers email: d.osei@accrasolar.org.",
            Contact(
                name="Daniel Osei",
                title=None,
                organization="Accra Solar Cooperative",
                email="d.osei@accrasolar.org",
                phone=None,
                city=None,
            ),
        ),
    ),
    max_output_tokens=200,
    # Every field is printed in the document as it should be answered: decoded as spans of it,
    # each at most its max_length (perf/results/copy-fields-*.md: the comparison).
    copy_fields=("name", "title", "organization", "email", "phone", "city"),
)
