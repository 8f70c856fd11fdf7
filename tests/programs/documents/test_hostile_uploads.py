"""Uploads cannot exhaust the gateway's memory (issue 25, findings 1 and 5).

A JSONL upload of millions of tiny lines is refused (413) the moment it passes
FORKPOINT_MAX_DOCUMENTS_PER_JOB, while it is being read: the documents past the limit are never
built. A PDF with more text than FORKPOINT_MAX_DOCUMENT_CHARS is one error document, its
extraction stopped at the page that passed the limit; a PDF whose streams inflate past the
decoded-bytes budget is an error document too, never an exception that sinks the batch."""

import zlib

import pytest
from fastapi.testclient import TestClient

import forkpoint.api.routes_jobs as routes_jobs
from forkpoint.api.app import create_app
from forkpoint.api.settings import Settings
from forkpoint.programs.documents import formats
from forkpoint.programs.documents.document import from_bytes, iter_bytes

MILLIONS = 2_000_000
LOCAL = "http://127.0.0.1:8000"  # the Host a local caller sends (TestClient's is 'testserver')


def text_pdf(pages: list[str], *, deflate: bool = False) -> bytes:
    """A minimal, valid PDF: one page per string, each shown in Helvetica by its content stream."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"",  # the page tree, filled in below
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    kids = []
    for text in pages:
        content = b"BT /F1 12 Tf 72 720 Td (" + text.encode("latin-1") + b") Tj ET"
        stream = zlib.compress(content, 9) if deflate else content
        flate = b" /Filter /FlateDecode" if deflate else b""
        objects.append(
            b"<< /Length %d%s >>\nstream\n" % (len(stream), flate) + stream + b"\nendstream"
        )
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % len(objects)
        )
        kids.append(b"%d 0 R" % len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), len(kids))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def page_text(number: int) -> str:
    return f"Page {number:02d} " + "x" * 90  # 98 characters


@pytest.fixture
def make_client(tmp_path):
    clients = []

    def make(**limits) -> TestClient:
        settings = Settings(
            db_path=tmp_path / f"gateway-{len(clients)}.db",
            sglang_url="http://127.0.0.1:9",  # nothing listens: these tests never reach it
            open=True,  # a loopback gateway without keys, as tests/api/conftest.py makes it
            **limits,
        )
        client = TestClient(create_app(settings, start_workers=False), base_url=LOCAL)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def documents_built(monkeypatch) -> list[str]:
    """The names of the documents the gateway's upload reader pulled, in order."""
    built: list[str] = []

    def counting(*args, **kwargs):
        for doc in iter_bytes(*args, **kwargs):
            built.append(doc.name)
            yield doc

    monkeypatch.setattr(routes_jobs, "iter_bytes", counting)
    return built


def upload(client: TestClient, *files: tuple[str, bytes]):
    parts = [("files", (name, raw, "application/octet-stream")) for name, raw in files]
    return client.post("/v1/jobs", data={"task": "contacts"}, files=parts)


def test_a_jsonl_upload_of_millions_of_lines_is_refused_at_the_limit_while_it_is_read(
    make_client, documents_built
):
    client = make_client(max_documents_per_job=100)
    response = upload(client, ("ones.jsonl", b"1\n" * MILLIONS))
    assert response.status_code == 413, response.text
    body = response.json()
    assert body["kind"] == "TooLarge"
    assert "more than 100 documents" in body["error"]
    assert "the limit per job is 100" in body["error"]
    assert "FORKPOINT_MAX_DOCUMENTS_PER_JOB" in body["hint"]
    assert len(documents_built) == 101  # document 101 was refused; the 1,999,899 after it: never
    assert documents_built[-1] == "ones.jsonl:101"
    assert client.get("/v1/jobs").json() == []


def test_unreadable_lines_count_toward_the_limit(make_client, documents_built):
    client = make_client(max_documents_per_job=100)
    response = upload(client, ("garbage.jsonl", b"not json\n" * MILLIONS))
    assert response.status_code == 413, response.text
    assert "more than 100 documents" in response.json()["error"]
    assert len(documents_built) == 101


def test_the_limit_is_over_all_the_uploads_of_a_job(make_client, documents_built):
    client = make_client(max_documents_per_job=100)
    lines = b'"Ann Lee"\n' * 60
    response = upload(client, ("a.jsonl", lines), ("b.jsonl", lines))
    assert response.status_code == 413, response.text
    assert "reading stopped in b.jsonl" in response.json()["error"]
    assert documents_built[-1] == "b.jsonl:41"


def test_exactly_the_limit_of_documents_is_accepted(make_client):
    client = make_client(max_documents_per_job=100)
    response = upload(client, ("mails.jsonl", b'"Ann Lee"\n' * 99 + b"not json\n"))
    assert response.status_code == 202, response.text
    assert response.json()["total"] == 100
    assert response.json()["failed"] == 1


def test_documents_are_read_lazily_and_from_bytes_still_reads_them_all():
    raw = b"1\n" * MILLIONS
    reader = iter_bytes("ones.jsonl", raw)
    assert [next(reader).name for _ in range(3)] == ["ones.jsonl:1", "ones.jsonl:2", "ones.jsonl:3"]
    assert [d.name for d in from_bytes("two.jsonl", b'"Ann"\n\n"Omar"\n')] == [
        "two.jsonl:1",
        "two.jsonl:3",
    ]
    (single,) = from_bytes("one.jsonl", b'"Ann Lee"\n')
    assert (single.name, single.text) == ("one.jsonl", "Ann Lee")


def test_a_pdf_under_the_character_limit_is_read_to_its_last_page():
    raw = text_pdf([page_text(n) for n in range(1, 6)])
    (doc,) = from_bytes("short.pdf", raw, max_chars=5 * 98 + 4 * 2)  # pages and "\n\n" between
    assert doc.error is None
    assert doc.text.split("\n\n") == [page_text(n) for n in range(1, 6)]


def test_a_pdf_over_the_character_limit_is_an_error_document_read_no_further():
    raw = text_pdf([page_text(n) for n in range(1, 41)])  # 40 pages, ~4,000 characters
    (doc,) = from_bytes("long.pdf", raw, max_chars=1_000)
    assert doc.text is None
    assert "long.pdf has more than 1000 characters of text" in doc.error
    assert "stopped reading at page 11 of 40" in doc.error  # 10 pages: 998 characters
    (unbounded,) = from_bytes("long.pdf", raw)  # the CLI's reading: no character limit
    assert unbounded.text.count("Page ") == 40


def test_an_uploaded_pdf_over_the_character_limit_fails_alone(make_client):
    client = make_client(max_document_chars=1_000)
    long_pdf = text_pdf([page_text(n) for n in range(1, 41)], deflate=True)
    response = upload(client, ("long.pdf", long_pdf), ("good.txt", b"Ann Lee"))
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["total"] == 2 and job["failed"] == 1
    results = client.get(f"/v1/jobs/{job['id']}/results", params={"wait": "false"}).text
    assert "long.pdf has more than 1000 characters of text" in results
    assert "stopped reading at page 11 of 40" in results


def test_a_pdf_of_many_small_streams_that_inflate_past_the_budget_is_an_error_document(
    monkeypatch,
):
    monkeypatch.setattr(formats, "MAX_PDF_DECODED_BYTES", 4 << 20)
    pages = [" " * (1 << 20) for _ in range(20)]  # 1 MB of blanks per page: no text at all
    raw = text_pdf(pages, deflate=True)
    assert len(raw) < 100_000  # each stream compresses ~1000 times
    (doc,) = from_bytes("bomb.pdf", raw)
    assert doc.text is None
    assert "bomb.pdf decodes to more than 4194304 bytes of PDF streams" in doc.error


def test_one_stream_past_the_per_stream_limit_is_an_error_document(monkeypatch):
    monkeypatch.setattr(formats, "MAX_PDF_STREAM_BYTES", 1 << 20)
    raw = text_pdf(["A" * (2 << 20)], deflate=True)
    (doc,) = from_bytes("stream.pdf", raw)
    assert doc.text is None
    assert "stream.pdf is too large a PDF to read" in doc.error


def test_the_budget_is_only_for_the_pdf_being_read(monkeypatch):
    monkeypatch.setattr(formats, "MAX_PDF_DECODED_BYTES", 256 << 10)
    raw = text_pdf([" " * (64 << 10)] * 3 + ["Ann Lee"], deflate=True)  # 192 KB decoded
    for _ in range(10):  # 1.9 MB decoded over the ten reads: each read has its own budget
        (doc,) = from_bytes("fine.pdf", raw)
        assert doc.text == "Ann Lee"
