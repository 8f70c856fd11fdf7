"""Documents in: a folder of .txt/.md files, each read as UTF-8 text or turned into an error."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from forkpoint.programs.errors import DocumentError

TEXT_SUFFIXES = frozenset({".txt", ".md"})


@dataclass(frozen=True)
class Document:
    """One input. A document that could not be read keeps its name and carries `error`."""

    name: str
    text: str | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        if (self.text is None) == (self.error is None):
            raise ValueError("a Document has either text or an error")


def read_text(path: Path, name: str | None = None) -> Document:
    """Read one file; binary, non-UTF-8 or empty content becomes a per-document error."""
    name = name or path.name
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return Document(name, error=f"cannot read {name}: {exc.strerror or exc}")
    return decode(name, raw)


def decode(name: str, raw: bytes) -> Document:
    """Bytes of a file or an upload → a text Document, or one carrying the reason it is not."""
    if b"\x00" in raw:
        return Document(name, error=f"{name} is binary (it contains NUL bytes), not text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return Document(
            name, error=f"{name} is not UTF-8 text (byte {exc.start}: {raw[exc.start]:#04x})"
        )
    return from_text(name, text)


def from_text(name: str, text: str) -> Document:
    """A document given as text (e.g. in a JSON request); empty text is an error."""
    if not text.strip():
        return Document(name, error=f"{name} is empty")
    return Document(name, text=text)


def folder_files(folder: Path) -> list[Path]:
    """The folder's .txt and .md files, sorted by name (the order results come back in)."""
    if not folder.is_dir():
        raise DocumentError(f"{folder} is not a folder", hint="pass a folder of .txt/.md files")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
    if not files:
        raise DocumentError(f"{folder} holds no .txt or .md files")
    return files


def read_folder(folder: Path) -> Iterator[Document]:
    """Documents of a folder, read lazily in name order."""
    for path in folder_files(folder):
        yield read_text(path)
