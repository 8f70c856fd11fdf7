"""Reading documents: a folder's files in name order; what is not a document becomes its error."""

import hashlib

import pytest

from forkpoint.errors import DocumentError
from forkpoint.programs.documents.document import Document, folder_files, read_folder, read_text


def test_every_file_is_read_in_name_order_and_hidden_files_are_left_out(tmp_path):
    (tmp_path / "b.md").write_text("# Beta", encoding="utf-8")
    (tmp_path / "a.txt").write_text("Ålesund café", encoding="utf-8")
    (tmp_path / "c.bin").write_bytes(b"\x7fELF\x02\x01")
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x00")
    docs = list(read_folder(tmp_path))
    assert [d.name for d in docs] == ["a.txt", "b.md", "c.bin"]
    assert docs[0].text == "Ålesund café"
    assert docs[2].error == "c.bin is an executable, not a document"


def test_every_document_carries_the_sha256_of_its_content(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"same bytes")
    (tmp_path / "b.txt").write_bytes(b"same bytes")
    a, b = read_folder(tmp_path)
    assert a.sha256 == b.sha256 == hashlib.sha256(b"same bytes").hexdigest()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "is empty"),
        (b"  \n\t ", "is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "is a PNG image"),
        (b"\x00\x01\x02 raw", "is binary"),
        ("caf\u00e9".encode("latin-1"), "is not UTF-8"),
    ],
    ids=["empty", "whitespace-only", "png", "binary", "latin-1"],
)
def test_unreadable_content_becomes_a_document_error_not_an_exception(tmp_path, content, reason):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    doc = read_text(path)
    assert doc.text is None
    assert reason in doc.error


def test_a_byte_order_mark_is_not_part_of_the_text(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffhello".encode())
    assert read_text(path).text == "hello"


def test_a_missing_folder_or_one_without_documents_is_a_clear_error(tmp_path):
    with pytest.raises(DocumentError, match="is not a folder"):
        folder_files(tmp_path / "nope")
    with pytest.raises(DocumentError, match="holds no files"):
        folder_files(tmp_path)


def test_a_document_has_either_text_or_an_error():
    with pytest.raises(ValueError):
        Document("x")
