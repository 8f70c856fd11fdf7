"""Documents in: files of any supported format (see formats.py), each read or turned into an error.

Every document carries the SHA-256 of its content, so results name exactly what they were
extracted from and a re-run can skip what is already done.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from forkpoint.errors import DocumentError
from forkpoint.programs.documents.formats import iter_texts


@dataclass(frozen=True)
class Document:
    """One input. A document that could not be read keeps its name and carries `error`."""

    name: str
    text: str | None = None
    error: str | None = None
    sha256: str | None = None  # of the file's bytes (of the line, for a JSONL document)

    def __post_init__(self) -> None:
        if (self.text is None) == (self.error is None):
            raise ValueError("a Document has either text or an error")


def content_hash(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def from_bytes(
    name: str, raw: bytes, *, json_field: str | None = None, max_chars: int | None = None
) -> list[Document]:
    """A file's or an upload's bytes → its documents (one, or one per JSONL line)."""
    return list(iter_bytes(name, raw, json_field=json_field, max_chars=max_chars))


def iter_bytes(
    name: str, raw: bytes, *, json_field: str | None = None, max_chars: int | None = None
) -> Iterator[Document]:
    """`from_bytes`, lazily: a JSONL file's documents are built one at a time as they are asked
    for, so a caller that stops at a limit never builds the rest. `max_chars`: a PDF with more
    text than that is one error document, its extraction stopped there (formats._pdf_text)."""
    digest = content_hash(raw)
    texts = iter_texts(name, raw, json_field=json_field, max_chars=max_chars)
    try:
        head = list(itertools.islice(texts, 2))  # a file of one document takes the file's name
    except DocumentError as exc:
        yield Document(name, error=exc.message, sha256=digest)
        return
    if len(head) == 1 and isinstance(head[0][1], str):
        yield from_text(name, head[0][1], sha256=digest)
        return
    try:
        for part, text in itertools.chain(head, texts):
            if isinstance(text, DocumentError):
                yield Document(part, error=text.message, sha256=digest)
            else:
                yield from_text(part, text, sha256=content_hash(text))
    except DocumentError as exc:  # the file failed after its first documents: its error last
        yield Document(name, error=exc.message, sha256=digest)


def decode(name: str, raw: bytes) -> Document:
    """Bytes of a single-document file → a Document (the first, for a JSONL file)."""
    return from_bytes(name, raw)[0]


def from_text(name: str, text: str, *, sha256: str | None = None) -> Document:
    """A document given as text (e.g. in a JSON request); empty text is an error."""
    digest = sha256 or content_hash(text)
    if not text.strip():
        return Document(name, error=f"{name} is empty", sha256=digest)
    return Document(name, text=text, sha256=digest)


def read_path(
    path: Path, name: str | None = None, *, json_field: str | None = None
) -> list[Document]:
    """Read one file into its documents; an unreadable file is one error document."""
    name = name or path.name
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return [Document(name, error=f"cannot read {name}: {exc.strerror or exc}")]
    return from_bytes(name, raw, json_field=json_field)


def read_text(path: Path, name: str | None = None) -> Document:
    """Read a single-document file."""
    return read_path(path, name)[0]


def folder_files(folder: Path) -> list[Path]:
    """The folder's files (hidden ones aside), sorted by name: the order results come back in.
    Every file is tried; one that is not a readable document becomes an error line."""
    if not folder.is_dir():
        raise DocumentError(f"{folder} is not a folder", hint="pass a folder of documents")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise DocumentError(f"{folder} holds no files")
    return files


def read_folder(folder: Path, *, json_field: str | None = None) -> Iterator[Document]:
    """Documents of a folder, read lazily in name order."""
    for path in folder_files(folder):
        yield from read_path(path, json_field=json_field)
