"""Formats: real PDF, Word, HTML and JSON files, made by the tests with real libraries."""

import io
import json
import zipfile

import pytest

from forkpoint.programs.documents.document import from_bytes
from forkpoint.programs.documents.formats import sniff

INVOICE_LINES = ["Invoice INV-2041 from Brightwater Ltd", "Total due: 1,250.00 EUR"]


def pdf_bytes(lines: list[str]) -> bytes:
    """A one-page PDF with a real text layer (matplotlib's PDF backend, TrueType text)."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["pdf.fonttype"] = 42
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(8.5, 11))
    for i, line in enumerate(lines):
        figure.text(0.1, 0.9 - 0.05 * i, line)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="pdf")
    plt.close(figure)
    return buffer.getvalue()


def docx_bytes() -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("Invoice INV-2041", level=1)
    document.add_paragraph("Seller: Brightwater Ltd")
    table = document.add_table(rows=2, cols=2)
    for row, (item, price) in enumerate([("Pumps", "1,000.00"), ("Freight", "250.00")]):
        table.cell(row, 0).text, table.cell(row, 1).text = item, price
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def one(name: str, raw: bytes, **options):
    [document] = from_bytes(name, raw, **options)
    return document


def test_a_pdf_is_read_from_its_text_layer():
    document = one("invoice.pdf", pdf_bytes(INVOICE_LINES))
    assert document.text.splitlines() == INVOICE_LINES


def test_a_pdf_without_a_text_layer_is_an_error_that_says_so():
    document = one("scan.pdf", pdf_bytes([]))
    assert document.text is None
    assert "PDF without a text layer" in document.error


def test_a_word_document_gives_its_paragraphs_and_table_rows():
    document = one("invoice.docx", docx_bytes())
    assert document.text.splitlines() == [
        "Invoice INV-2041",
        "Seller: Brightwater Ltd",
        "Pumps | 1,000.00",
        "Freight | 250.00",
    ]


def test_html_gives_visible_text_without_scripts_or_styles():
    page = b"""<!DOCTYPE html><html><head><title>t</title><style>p {color: red}</style></head>
    <body><script>var total = 999;</script><h1>Invoice INV-2041</h1>
    <p>Total due: <b>1,250.00 EUR</b></p></body></html>"""
    assert one("page.html", page).text == "Invoice INV-2041\nTotal due:\n1,250.00 EUR"


def test_content_decides_the_format_not_the_extension():
    assert sniff("mislabelled.txt", pdf_bytes(INVOICE_LINES)) == "pdf"
    assert sniff("download", b"<!doctype html><p>x</p>") == "html"
    assert sniff("notes.txt", b"[draft] call Omar") == "text"  # a bracket is not JSON
    assert one("mislabelled.txt", pdf_bytes(INVOICE_LINES)).text.startswith("Invoice INV-2041")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 16, "is a PNG image"),
        (b"\xff\xd8\xff\xe0", "is a JPEG image"),
        (b"%PDF-1.4 truncated", "damaged PDF"),
    ],
    ids=["png", "jpeg", "broken-pdf"],
)
def test_unknown_or_broken_files_become_document_errors(raw, reason):
    document = one("file.pdf", raw)
    assert document.text is None and reason in document.error


def test_a_zip_that_is_not_a_word_document_is_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data.csv", "a,b\n")
    assert "is a zip archive" in one("data.docx", buffer.getvalue()).error


def test_json_takes_the_chosen_field_or_the_whole_object():
    raw = json.dumps({"meta": {"id": 7}, "body": {"text": "Invoice INV-2041"}}).encode()
    assert one("mail.json", raw, json_field="body.text").text == "Invoice INV-2041"
    assert '"id": 7' in one("mail.json", raw).text
    assert "has no field 'body.html'" in one("mail.json", raw, json_field="body.html").error


def test_jsonl_is_one_document_per_line_and_a_bad_line_is_only_its_own_error():
    raw = b'{"text": "first"}\n\n{"text": 42}\nnot json\n{"text": "fourth"}\n'
    documents = from_bytes("batch.jsonl", raw, json_field="text")
    assert [d.name for d in documents] == [
        "batch.jsonl:1",
        "batch.jsonl:3",
        "batch.jsonl:4",
        "batch.jsonl:5",
    ]
    assert [d.text for d in documents] == ["first", None, None, "fourth"]
    assert "is int, not text" in documents[1].error
    assert "batch.jsonl:4 is not JSON" in documents[2].error
    assert documents[0].sha256 != documents[3].sha256  # each line hashed on its own
