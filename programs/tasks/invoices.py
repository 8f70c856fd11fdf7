"""Invoices: seller, number, dates, currency, total and line items."""

from datetime import date

from pydantic import BaseModel, Field

from forkpoint.programs.tasks.task import Example, ExtractionTask


class LineItem(BaseModel):
    """One billed line."""

    description: str = Field(max_length=60, description="What was billed, as written.")
    amount: float = Field(description="The line's total amount, a plain number.")


class Invoice(BaseModel):
    """The header and lines of one invoice."""

    vendor: str = Field(max_length=80, description="The company that issued the invoice.")
    invoice_number: str = Field(max_length=40, description="The invoice number as printed.")
    issue_date: date | None = Field(None, description="The date the invoice was issued.")
    due_date: date | None = Field(None, description="The payment due date, if stated.")
    currency: str = Field(
        pattern=r"^[A-Z]{3}$", description="ISO 4217 code of the amounts, e.g. EUR, USD, GBP."
    )
    total: float = Field(description="The total amount due including tax, a plain number.")
    # 6 lines of at most 60 characters keep the longest valid answer inside max_output_tokens.
    line_items: list[LineItem] = Field(
        max_length=6, description="The billed lines, in document order (at most 6)."
    )


EXAMPLE_EMAIL = """From: billing@northwind-print.co.uk
Subject: Invoice NW-20931

Hello,

please find our invoice NW-20931 dated 2026-03-02 for the brochure job.

  500x A5 brochures, 4 colour ...... 340.00
  Design revisions (2 h) ........... 120.00
  VAT 20% ........................... 92.00

Total due: GBP 552.00 by 2026-04-01.

Northwind Print Ltd, 14 Mill Lane, Leeds"""

EXAMPLE_TABLE = """KESTREL SOFTWARE GMBH | Rechnung / Invoice
Invoice no.: KS-2026-0117        Date: 2026-01-15
Bill to: Larsen Logistics A/S, Aarhus

Item                               Amount (EUR)
Annual licence, 25 seats           4,750.00
Onboarding workshop                  900.00
-----------------------------------------------
Total                              5,650.00 EUR"""

TASK = ExtractionTask(
    name="invoices",
    description="Seller, number, dates, currency, total and line items of an invoice.",
    instructions=(
        "You read invoices and extract their header and billed lines. The vendor is the company "
        "that sends the invoice, not the customer being billed. Amounts are plain numbers "
        "without thousands separators or currency symbols. Dates are written YYYY-MM-DD. Tax "
        "lines are not line items."
    ),
    output_model=Invoice,
    examples=(
        Example(
            EXAMPLE_EMAIL,
            Invoice(
                vendor="Northwind Print Ltd",
                invoice_number="NW-20931",
                issue_date=date(2026, 3, 2),
                due_date=date(2026, 4, 1),
                currency="GBP",
                total=552.0,
                line_items=[
                    LineItem(description="500x A5 brochures, 4 colour", amount=340.0),
                    LineItem(description="Design revisions (2 h)", amount=120.0),
                ],
            ),
        ),
        Example(
            EXAMPLE_TABLE,
            Invoice(
                vendor="KESTREL SOFTWARE GMBH",  # as printed: a copy field
                invoice_number="KS-2026-0117",
                issue_date=date(2026, 1, 15),
                due_date=None,
                currency="EUR",
                total=5650.0,
                line_items=[
                    LineItem(description="Annual licence, 25 seats", amount=4750.0),
                    LineItem(description="Onboarding workshop", amount=900.0),
                ],
            ),
        ),
    ),
    max_output_tokens=400,
    # Printed on every invoice: a value that is not in the document was made up.
    grounded_fields=("vendor", "invoice_number"),
    # Printed verbatim: decoded as spans of the document, so the example's number cannot be
    # written in place of the document's (a vendor in capitals is copied in capitals).
    copy_fields=("vendor", "invoice_number", "line_items[].description"),
)
