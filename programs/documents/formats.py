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

Reading is lazy (`iter_texts`): a JSONL file's lines are parsed one at a time as the caller
asks, so a caller with a document limit (the gateway) stops at it instead of building millions.
With `max_chars`, a PDF's text is extracted page by page and given up as soon as it passes that
many characters; its pypdf streams are bounded too (see `_pdf_text`).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal

from forkpoint.errors import DocumentError

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
MAX_PDF_STREAM_BYTES = 32 << 20  # one PDF stream, decoded (pypdf's own default: 75 MB)
MAX_PDF_DECODED_BYTES = 256 << 20  # all streams of one PDF, decoded (pypdf has no such knob)
LINE_BREAK = re.compile("\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")  # str.splitlines'


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


Text = tuple[str, "str | DocumentError"]
Texts = list[Text]


def to_texts(
    name: str, raw: bytes, *, json_field: str | None = None, max_chars: int | None = None
) -> Texts:
    """(document name, text) pairs of one file: one pair, or one per line of a JSONL file.
    A JSONL line that cannot be used carries its DocumentError in place of the text.
    Every way a file can fail to be read ends here as a DocumentError naming the file."""
    return list(iter_texts(name, raw, json_field=json_field, max_chars=max_chars))


def iter_texts(
    name: str, raw: bytes, *, json_field: str | None = None, max_chars: int | None = None
) -> Iterator[Text]:
    """`to_texts`, lazily: a JSONL line is parsed only when the caller asks for it. A DocumentError
    for the whole file (not UTF-8, empty, damaged) is raised while iterating, before any pair of
    a file that has one document. `max_chars` bounds a PDF's extraction (see `_pdf_text`)."""
    kind: Kind | None = None
    try:
        kind = sniff(name, raw)
        yield from _texts(kind, name, raw, json_field, max_chars)
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


def _texts(
    kind: Kind, name: str, raw: bytes, json_field: str | None, max_chars: int | None
) -> Iterator[Text]:
    if kind == "pdf":
        # without a limit, called as before (tests stand in for _pdf_text(name, raw))
        yield name, _pdf_text(name, raw) if max_chars is None else _pdf_text(name, raw, max_chars)
    elif kind == "docx":
        yield name, _docx_text(name, raw)
    elif kind == "jsonl":
        yield from _jsonl_texts(name, _utf8(name, raw), json_field)
    else:
        text = _utf8(name, raw)
        if kind == "html":
            yield name, html_text(text)
        elif kind == "json":
            yield name, _json_text(name, _load_json(name, text), json_field)
        else:
            yield name, text


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


def _pdf_text(name: str, raw: bytes, max_chars: int | None = None) -> str:
    """The text layer, page by page; past `max_chars` characters the PDF is given up at once
    (a DocumentError naming the limit and the page reached), not extracted to its end.

    What bounds memory while pypdf reads one PDF (in-process; a subprocess under RLIMIT_AS would
    be the hard bound, and is not used: the gateway parses uploads in its worker threads):
    - the raw bytes: the upload (the gateway's max_body_bytes) or the file;
    - decoded streams, which pypdf keeps cached on the reader: at most MAX_PDF_DECODED_BYTES in
      all plus one stream of at most MAX_PDF_STREAM_BYTES (pypdf's per-stream knobs, lowered
      here; the total is counted by `_decode_budget`, since pypdf's limits are per stream and a
      64 MB file of FlateDecode streams could otherwise inflate ~1000 times);
    - parsed objects: pypdf's element limits (100,000 per array and dictionary, 100,000 page
      tree entries, 2,000,000 operations per content stream, 5,000 forms per page);
    - the text: at most `max_chars` plus one page's text (each page's text comes from its
      content streams, so it is bounded by what they decode to).
    """
    from pypdf import PdfReader
    from pypdf.errors import LimitReachedError

    try:
        with _decode_budget(name) as budget:
            reader = PdfReader(io.BytesIO(raw))
            if reader.is_encrypted:
                raise DocumentError(f"{name} is an encrypted PDF")
            pages: list[str] = []
            chars = 0
            total = len(reader.pages)
            for number, page in enumerate(reader.pages, start=1):
                text = (page.extract_text() or "").strip()
                budget.check()  # pypdf swallows some exceptions while extracting; not this one
                if text:
                    chars += len(text) + 2 * bool(pages)  # "\n\n" between pages
                    pages.append(text)
                if max_chars is not None and chars > max_chars:
                    raise DocumentError(
                        f"{name} has more than {max_chars} characters of text, the limit "
                        f"(stopped reading at page {number} of {total})",
                        hint="split the PDF, or extract the pages you need",
                    )
    except LimitReachedError as exc:
        quoted = str(exc)[:MAX_QUOTED]
        raise DocumentError(f"{name} is too large a PDF to read ({quoted})") from None
    if not pages:
        raise DocumentError(
            f"{name} is a PDF without a text layer ({total} page(s); scanned?)",
            hint="run OCR first (e.g. ocrmypdf), then extract",
        )
    return "\n\n".join(pages)


class _Budget:
    """Decoded bytes left for the PDF being read in this context (thread or task)."""

    def __init__(self, name: str, left: int) -> None:
        self.name, self.left = name, left

    def spend(self, decoded: int) -> None:
        self.left -= decoded
        self.check()

    def check(self) -> None:
        if self.left < 0:
            raise DocumentError(
                f"{self.name} decodes to more than {MAX_PDF_DECODED_BYTES} bytes of PDF streams, "
                "the limit (a compression bomb?)"
            )


_BUDGET: ContextVar[_Budget | None] = ContextVar("forkpoint_pdf_budget", default=None)


@contextmanager
def _decode_budget(name: str) -> Iterator[_Budget]:
    """pypdf's per-stream limits lowered to MAX_PDF_STREAM_BYTES, and every stream decoded in
    this context counted against MAX_PDF_DECODED_BYTES. Both are context-local (pypdf's
    configuration is a ContextVar too): other threads reading other PDFs are not affected."""
    from pypdf import filters
    from pypdf._configuration import apply_configuration

    _count_decoded_streams(filters)
    streams = MAX_PDF_STREAM_BYTES
    budget = _Budget(name, MAX_PDF_DECODED_BYTES)
    token = _BUDGET.set(budget)
    try:
        with apply_configuration(
            zlib_maximum_output_length=streams,
            lzw_maximum_output_length=streams,
            run_length_maximum_output_length=streams,
            brotli_maximum_output_length=streams,
            jbig2_maximum_output_length=streams,
            array_based_stream_maximum_output_length=streams,
            maximum_declared_stream_length=streams,
        ):
            yield budget
    finally:
        _BUDGET.reset(token)


def _count_decoded_streams(filters: Any) -> None:
    """Wrap pypdf.filters.decode_stream_data (every encoded stream is decoded through it, looked up
    at call time by EncodedStreamObject.get_data) so a budget set in `_decode_budget` is charged.
    Outside a budget the wrapper only passes the data through."""
    original = filters.decode_stream_data
    if getattr(original, "forkpoint_counted", False):
        return

    def decode_stream_data(stream: Any) -> bytes:
        data = original(stream)
        budget = _BUDGET.get()
        if budget is not None:
            budget.spend(len(data))
        return data

    decode_stream_data.forkpoint_counted = True  # type: ignore[attr-defined]
    filters.decode_stream_data = decode_stream_data


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


def _jsonl_texts(name: str, text: str, json_field: str | None) -> Iterator[Text]:
    """One pair per non-blank line, parsed when asked for (never a list of all the lines)."""
    empty = True
    for number, line in enumerate(_lines(text), start=1):
        if not line.strip():
            continue
        empty = False
        where = f"{name}:{number}"
        try:
            value = _json_text(where, _load_json(where, line), json_field)
        except ValueError as exc:
            yield where, DocumentError(f"{where} is not JSON: {exc}")
        except DocumentError as exc:
            yield where, exc
        else:
            yield where, value
    if empty:
        raise DocumentError(f"{name} is empty")


def _lines(text: str) -> Iterator[str]:
    """str.splitlines(text), one line at a time."""
    start = 0
    for brk in LINE_BREAK.finditer(text):
        yield text[start : brk.start()]
        start = brk.end()
    if start < len(text):
        yield text[start:]
