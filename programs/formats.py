"""Bytes of a file → the text the model reads, by what the content is (the name only breaks ties).

Plain text and Markdown as UTF-8; HTML to its visible text (scripts, styles dropped, with
BeautifulSoup); PDF to its text layer (pypdf); Word .docx to paragraphs and tables
(python-docx); JSON and JSONL as a chosen field (`json_field`, a dotted path), or as they are.
A JSONL file holds many documents, named `file.jsonl:LINE`. Anything else — images, archives,
executables, a PDF without a text layer — is a DocumentError naming the reason, so it becomes
that document's error line and never stops a batch.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from typing import Literal

from forkpoint.programs.errors import DocumentError

Kind = Literal["text", "html", "pdf", "docx", "json", "jsonl"]
HTML_START = re.compile(rb"^\s*(<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>])", re.I)
BINARY_SIGNATURES = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"\x7fELF": "an executable",
    b"\x1f\x8b": "a gzip archive",
    b"PK\x03\x04": "a zip archive",
}


def sniff(name: str, raw: bytes) -> Kind:
    """What the bytes are. Content decides; the extension only separates JSON from JSONL/text."""
    if raw.startswith(b"%PDF-"):
        return "pdf"
    if raw.startswith(b"PK\x03\x04"):
        if _is_docx(raw):
            return "docx"
        raise DocumentError(f"{name} is a zip archive, not a document")
    for signature, what in BINARY_SIGNATURES.items():
        if raw.startswith(signature):
            raise DocumentError(f"{name} is {what}, not a document")
    if b"\x00" in raw[:8192]:
        raise DocumentError(f"{name} is binary (it contains NUL bytes), not text")
    suffix = name.lower().rsplit(".", 1)[-1] if "." in name else ""
    if HTML_START.match(raw[:1024]) or suffix in ("html", "htm") and b"<" in raw[:4096]:
        return "html"
    if suffix == "jsonl":
        return "jsonl"
    if suffix == "json" or raw.lstrip()[:1] in (b"{", b"["):
        try:
            json.loads(raw)
            return "json"
        except ValueError:
            pass  # text that happens to start with a bracket
    return "text"


Texts = list[tuple[str, "str | DocumentError"]]


def to_texts(name: str, raw: bytes, *, json_field: str | None = None) -> Texts:
    """(document name, text) pairs of one file: one pair, or one per line of a JSONL file.
    A JSONL line that cannot be used carries its DocumentError in place of the text."""
    kind = sniff(name, raw)
    if kind == "pdf":
        return [(name, _pdf_text(name, raw))]
    if kind == "docx":
        return [(name, _docx_text(raw))]
    text = _utf8(name, raw)
    if kind == "html":
        return [(name, html_text(text))]
    if kind == "json":
        return [(name, _json_text(name, json.loads(text), json_field))]
    if kind == "jsonl":
        return _jsonl_texts(name, text, json_field)
    return [(name, text)]


def html_text(html: str) -> str:
    """The visible text of an HTML page, one block per line."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for hidden in soup(["script", "style", "noscript", "template", "head"]):
        hidden.decompose()
    lines = (line.strip() for line in soup.get_text("\n").splitlines())
    return "\n".join(line for line in lines if line)


def _utf8(name: str, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(
            f"{name} is not UTF-8 text (byte {exc.start}: {raw[exc.start]:#04x})"
        ) from None


def _is_docx(raw: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            return "word/document.xml" in archive.namelist()
    except zipfile.BadZipFile:
        return False


def _pdf_text(name: str, raw: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            raise DocumentError(f"{name} is an encrypted PDF")
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PyPdfError, ValueError, KeyError) as exc:
        raise DocumentError(f"{name} is a damaged PDF: {exc}") from None
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    if not text:
        raise DocumentError(
            f"{name} is a PDF without a text layer ({len(pages)} page(s); scanned?)",
            hint="run OCR first (e.g. ocrmypdf), then extract",
        )
    return text


def _docx_text(raw: bytes) -> str:
    import docx

    document = docx.Document(io.BytesIO(raw))
    blocks = [p.text for p in document.paragraphs if p.text.strip()]
    for table in document.tables:
        for row in table.rows:
            blocks.append(" | ".join(cell.text.strip() for cell in row.cells))
    return "\n".join(blocks)


def _json_text(name: str, value, json_field: str | None) -> str:
    if json_field is None:
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=1)
    for key in json_field.split("."):
        if not isinstance(value, dict) or key not in value:
            raise DocumentError(f"{name} has no field {json_field!r}")
        value = value[key]
    if not isinstance(value, str):
        raise DocumentError(f"{name}: field {json_field!r} is {type(value).__name__}, not text")
    return value


def _jsonl_texts(name: str, text: str, json_field: str | None) -> Texts:
    texts: Texts = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        try:
            texts.append((where, _json_text(where, json.loads(line), json_field)))
        except ValueError as exc:
            texts.append((where, DocumentError(f"{where} is not JSON: {exc}")))
        except DocumentError as exc:
            texts.append((where, exc))
    if not texts:
        raise DocumentError(f"{name} is empty")
    return texts
