"""Support tickets: what broke, how badly, for whom."""

from typing import Literal

from pydantic import BaseModel, Field

from forkpoint.programs.tasks.task import Example, ExtractionTask


class Ticket(BaseModel):
    """The triage view of one support email."""

    product: str = Field(max_length=60, description="The product or service the email is about.")
    severity: Literal["low", "medium", "high", "critical"] = Field(
        description="critical: outage or data loss; high: a core feature broken; medium: "
        "degraded or a workaround exists; low: question or cosmetic."
    )
    summary: str = Field(max_length=160, description="One sentence: what is wrong.")
    customer_name: str | None = Field(None, max_length=80, description="Who wrote, if signed.")
    order_id: str | None = Field(None, max_length=30, description="Order or account id, if any.")


TASK = ExtractionTask(
    name="support_tickets",
    description="Product, severity, summary, customer and order id of a support email.",
    instructions=(
        "You triage customer support emails. Name the product, judge the severity from the "
        "impact described, and summarise the problem in one short sentence."
    ),
    output_model=Ticket,
    examples=(
        Example(
            "Subject: URGENT - checkout down\n\nSince 09:10 none of our customers can pay: "
            "the PayLane widget shows 'gateway timeout' on every order. We are losing sales.\n"
            "Merchant id M-88213\n-- Sofia Brandt",
            Ticket(
                product="PayLane widget",
                severity="critical",
                summary="Checkout fails with gateway timeout for every order since 09:10.",
                customer_name="Sofia Brandt",
                order_id="M-88213",
            ),
        ),
        Example(
            "Hi, small thing: in the TrailMap app the dark mode makes the elevation labels hard "
            "to read. Not urgent at all. Thanks, Ken",
            Ticket(
                product="TrailMap app",
                severity="low",
                summary="Elevation labels are hard to read in dark mode.",
                customer_name="Ken",
                order_id=None,
            ),
        ),
    ),
    max_output_tokens=200,
    # Named in the email as written; severity is judged and the summary is written, not copied.
    copy_fields=("product", "customer_name", "order_id"),
)
