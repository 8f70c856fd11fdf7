"""Hostile files (tests/conftest.py's BAD_FILES): each is its own document's error, never an
exception of another kind out of reading."""

import io
import zipfile

import pytest

from forkpoint.errors import DocumentError
from forkpoint.programs.documents import formats
from forkpoint.programs.documents.document import from_bytes, read_path


def test_a_hostile_file_becomes_its_documents_error(bad_file, tmp_path):
    name, raw, reason = bad_file
    (tmp_path / name).write_bytes(raw)
    for documents in (from_bytes(name, raw), read_path(tmp_path / name)):
        assert documents and all(d.text is None for d in documents)
        assert reason in documents[0].error
        assert documents[0].error.startswith(name)
        assert len(documents[0].error) < 500  # a library's message, cut to a readable length


def test_a_parser_failure_names_the_file_and_the_librarys_message():
    raw = zipfile_with({"word/document.xml": "<x/>"})
    [document] = from_bytes("memo.docx", raw)
    assert document.error.startswith("memo.docx is a damaged Word document (python-docx: KeyError")
    assert "[Content_Types].xml" in document.error


def test_any_exception_of_a_parser_is_a_document_error(monkeypatch):
    def broken(name, raw):
        raise AttributeError("'NoneType' object has no attribute 'get_object'")

    monkeypatch.setattr(formats, "_pdf_text", broken)
    [document] = from_bytes("odd.pdf", b"%PDF-1.4\n")
    assert document.error == (
        "odd.pdf is a damaged PDF (pypdf: AttributeError: "
        "'NoneType' object has no attribute 'get_object')"
    )


@pytest.mark.parametrize(
    ("failure", "reason"),
    [(RecursionError, "nested too deeply"), (MemoryError, "too large to read in memory")],
)
def test_running_out_of_stack_or_memory_in_a_parser_says_so(monkeypatch, failure, reason):
    def exhausted(html):
        raise failure()

    monkeypatch.setattr(formats, "html_text", exhausted)
    [document] = from_bytes("page.html", b"<html><p>x</p></html>")
    assert document.error.startswith("page.html") and reason in document.error


def test_a_word_document_over_the_uncompressed_size_limit_is_refused_before_parsing(monkeypatch):
    monkeypatch.setattr(formats, "MAX_DOCX_BYTES", 1000)
    raw = zipfile_with({"word/document.xml": "x" * 600, "word/styles.xml": "y" * 600})
    with pytest.raises(DocumentError, match=r"big.docx unpacks to 1200 bytes; the limit is 1000"):
        formats.to_texts("big.docx", raw)


def test_a_deeply_nested_jsonl_line_is_only_its_own_error():
    raw = b'{"text": "first"}\n' + b"[" * 100_000 + b'\n{"text": "third"}\n'
    documents = from_bytes("batch.jsonl", raw, json_field="text")
    assert [d.text for d in documents] == ["first", None, "third"]
    assert documents[1].error == "batch.jsonl:2 is JSON nested too deeply to read"


def test_json_nested_deeply_but_within_reach_is_read_or_refused_never_raised():
    for depth in (100, 500, 900, 990):
        raw = ("[" * depth + "]" * depth).encode()
        [document] = from_bytes("deep.json", raw)
        assert document.text is not None or "nested too deeply" in document.error


def test_one_long_line_of_text_is_read_as_it_is():
    [document] = from_bytes("line.txt", b"x" * 10_000_000)
    assert len(document.text) == 10_000_000


def zipfile_with(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()
