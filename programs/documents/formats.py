"""Bytes of a file → the text the model reads, by what the content is (the name only breaks ties).

Plain text and Markdown as UTF-8; HTML to its visible text (scripts, styles dropped, with
BeautifulSoup); PDF to its text layer (pypdf); Word .docx to paragraphs and tables
(python-docx); JSON and JSONL as a chosen field (`json_field`, a dotted path), or as they are.
A JSONL file holds many documents, named `file.jsonl:LINE`. Anything else — images, archives,
executables, a PDF without a text layer — is a DocumentError naming the reason, so it becomes
that document's error line and never stops a batch. So is a hostile file: whatever pypdf,
python-docx or BeautifulSoup raise becomes a DocumentError in `to_texts` (the one boundary), a
.docx is measured before it is unpacked (zip bombs), and JSON nested beyond Python's recursion
limit is refused (json raises RecursionError for it, which is not a ValueError).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from typing import Any, Literal

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
PARSERS = {  # kind → (what it is, the library that reads it)
    "pdf": ("PDF", "pypdf"),
    "docx": ("Word document", "python-docx"),
    "html": ("HTML page", "BeautifulSoup"),
}
MAX_QUOTED = 300  # characters of a library's message kept in a document's error
MAX_DOCX_BYTES = 50 << 20  # all members of a .docx, unpacked
MAX_DOCX_RATIO = 100  # unpacked / packed bytes (real .docx files: about 3 to 20)
RATIO_CHECKED_FROM = 1 << 20  # unpacked bytes; small archives may compress oddly


def sniff(name: str, raw: bytes) -> Kind:
    """What the bytes are. Content decides; the extension only separates JSON from JSONL/text."""
    if raw.startswith(b"%PDF-"):
        return "pdf"
    if raw.startswith(b"PK\x03\x04"):
        if _is_docx(name, raw):
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
        except RecursionError:
            return "json"  # too deeply nested to read: to_texts says so
        except ValueError:
            pass  # text that happens to start with a bracket
    return "text"


Texts = list[tuple[str, "str | DocumentError"]]


def to_texts(name: str, raw: bytes, *, json_field: str | None = None) -> Texts:
    """(document name, text) pairs of one file: one pair, or one per line of a JSONL file.
    A JSONL line that cannot be used carries its DocumentError in place of the text.
    Every way a file can fail to be read ends here as a DocumentError naming the file."""
    kind: Kind | None = None
    try:
        kind = sniff(name, raw)
        return _texts(kind, name, raw, json_field)
    except RecursionError:
        raise DocumentError(f"{name} is nested too deeply to read") from None
    except MemoryError:
        raise DocumentError(f"{name} is too large to read in memory") from None
    except DocumentError:
        raise
    except Exception as exc:
        # Deliberately broad, and only here, only for the third-party parsers: pypdf,
        # python-docx (lxml, zipfile) and BeautifulSoup raise far more than they document
        # (a KeyError for a .docx without [Content_Types].xml, lxml's XMLSyntaxError, pypdf's
        # AttributeErrors on damaged objects), and an unreadable file must be its own error,
        # not a failed batch or a 500. Failures of forkpoint's own code still propagate.
        if kind not in PARSERS:
            raise
        what, library = PARSERS[kind]
        quoted = f"{type(exc).__name__}: {exc}"[:MAX_QUOTED]
        raise DocumentError(f"{name} is a damaged {what} ({library}: {quoted})") from None


def _texts(kind: Kind, name: str, raw: bytes, json_field: str | None) -> Texts:
    if kind == "pdf":
        return [(name, _pdf_text(name, raw))]
    if kind == "docx":
        return [(name, _docx_text(name, raw))]
    text = _utf8(name, raw)
    if kind == "html":
        return [(name, html_text(text))]
    if kind == "json":
        return [(name, _json_text(name, _load_json(name, text), json_field))]
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


def _is_docx(name: str, raw: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            return "word/document.xml" in archive.namelist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise DocumentError(f"{name} is a damaged or truncated zip archive ({exc})") from None


def _pdf_text(name: str, raw: bytes) -> str:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(raw))
    if reader.is_encrypted:
        raise DocumentError(f"{name} is an encrypted PDF")
    pages = [page.extract_text() or "" for page in reader.pages]
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    if not text:
        raise DocumentError(
            f"{name} is a PDF without a text layer ({len(pages)} page(s); scanned?)",
            hint="run OCR first (e.g. ocrmypdf), then extract",
        )
    return text


def _docx_text(name: str, raw: bytes) -> str:
    import docx

    _check_unpacked_size(name, raw)
    document = docx.Document(io.BytesIO(raw))
    blocks = [p.text for p in document.paragraphs if p.text.strip()]
    for table in document.tables:
        for row in table.rows:
            blocks.append(" | ".join(cell.text.strip() for cell in row.cells))
    return "\n".join(blocks)


def _check_unpacked_size(name: str, raw: bytes) -> None:
    """Refuse a zip bomb before python-docx unpacks anything. The archive's declared sizes are
    enough: zipfile never inflates a member past its declared size (ZipExtFile cuts it there)."""
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        unpacked = sum(info.file_size for info in archive.infolist())
    if unpacked > MAX_DOCX_BYTES:
        raise DocumentError(f"{name} unpacks to {unpacked} bytes; the limit is {MAX_DOCX_BYTES}")
    if unpacked >= RATIO_CHECKED_FROM and unpacked > MAX_DOCX_RATIO * len(raw):
        raise DocumentError(
            f"{name} looks like a zip bomb: {len(raw)} bytes unpack to {unpacked} "
            f"(over {MAX_DOCX_RATIO} times)"
        )


def _load_json(name: str, text: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:  # not a ValueError: the callers' handlers would miss it
        raise DocumentError(f"{name} is JSON nested too deeply to read") from None


def _json_text(name: str, value: Any, json_field: str | None) -> str:
    if json_field is None:
        if isinstance(value, str):
            return value
        try:
            return json.dumps(value, ensure_ascii=False, indent=1)
        except RecursionError:  # parsed just within the limit, but indenting recurses deeper
            raise DocumentError(f"{name} is JSON nested too deeply to read") from None
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
            texts.append((where, _json_text(where, _load_json(where, line), json_field)))
        except ValueError as exc:
            texts.append((where, DocumentError(f"{where} is not JSON: {exc}")))
        except DocumentError as exc:
            texts.append((where, exc))
    if not texts:
        raise DocumentError(f"{name} is empty")
    return texts
