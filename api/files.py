"""Durable files owned by API keys: what OpenAI's Files API stores (batch inputs and outputs).

A file is a row in the gateway's database (table `files`, beside the JobStore's tables, on a
connection of its own) and its bytes in one file under `root`, named by its id; the client's
filename is only ever a column. Bytes are streamed to a temporary file first, then renamed into
place, then the row is inserted: a crash between the last two leaves a file with no row, which
`sweep()` removes, never a row without its bytes. Deleting goes the other way (row, then bytes).
"""

from __future__ import annotations

import builtins
import os
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import astuple, dataclass, replace
from pathlib import Path
from typing import Any, Literal

from forkpoint.api.auth import Caller
from forkpoint.errors import NotFound, TooLarge

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY, owner TEXT, purpose TEXT NOT NULL, filename TEXT NOT NULL,
    bytes INTEGER NOT NULL, created REAL NOT NULL, batch_id TEXT
);
CREATE INDEX IF NOT EXISTS files_by_owner ON files (owner, created, id);
"""
COLUMNS = "id, owner, purpose, filename, bytes, created, batch_id"
MAX_FILENAME = 255  # characters of a client's filename that are kept
SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # an id is a file's name under root
PART = ".part-"  # a file being written; its final name is its id


@dataclass(frozen=True)
class FileRecord:
    id: str
    owner: str | None
    purpose: str
    filename: str
    bytes: int
    created: float
    batch_id: str | None = None

    def to_openai(self) -> dict[str, Any]:
        """OpenAI's FileObject."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": int(self.created),
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
            "expires_at": None,
        }


def new_file_id() -> str:
    return "file-" + uuid.uuid4().hex


class FileStore:
    """Thread-safe; one SQLite connection guarded by a lock, like the JobStore's."""

    def __init__(self, db_path: Path, root: Path) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        root.chmod(0o700)  # mkdir's mode is cut by the umask, and an existing root kept its own
        self.root = root
        # another connection writes the same database (the JobStore): wait for it, not fail
        self._db = sqlite3.connect(
            db_path, check_same_thread=False, isolation_level=None, timeout=30.0
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a file the client was told about is on disk, power loss included (writes are few)
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()
        self._writing: set[str] = set()  # temporary files being written, which sweep() keeps

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def save(
        self,
        owner: str | None,
        purpose: str,
        filename: str,
        chunks: Iterable[bytes],
        *,
        max_bytes: int,
        max_owner_bytes: int | None,
    ) -> FileRecord:
        """Store a client's upload. TooLarge (413) as soon as it passes `max_bytes`, or when the
        owner's stored files and this one together would pass `max_owner_bytes`; then nothing
        of it is kept."""
        record = FileRecord(new_file_id(), owner, purpose, filename[:MAX_FILENAME], 0, 0.0)
        return self._store(record, chunks, max_bytes, max_owner_bytes)

    def write(
        self,
        owner: str | None,
        purpose: str,
        filename: str,
        lines: Iterable[bytes],
        *,
        batch_id: str,
        file_id: str | None = None,
    ) -> FileRecord:
        """Store a file the gateway made (a batch's output or error file), of any size.
        `file_id` fixes its id in advance; a file that already has it is returned unchanged
        (a restarted gateway may finalize a batch twice)."""
        if file_id is not None:
            if not SAFE_ID.fullmatch(file_id):
                raise ValueError(f"a file id is letters, digits, '-' and '_': {file_id!r}")
            existing = self.get(file_id)
            if existing is not None:
                return existing
        record = FileRecord(
            file_id or new_file_id(), owner, purpose, filename[:MAX_FILENAME], 0, 0.0, batch_id
        )
        return self._store(record, lines, None, None)

    def _store(
        self,
        record: FileRecord,
        chunks: Iterable[bytes],
        max_bytes: int | None,
        max_owner_bytes: int | None,
    ) -> FileRecord:
        """Stream `chunks` to a temporary file, checking the limits after each, sync it, then in
        one transaction: the owner's quota again (two uploads at once cannot both pass it),
        rename into place, insert the row. Whatever fails, no bytes without a row are left."""
        temp, final = self.root / f"{PART}{uuid.uuid4().hex}", self.root / record.id
        used = self.owner_bytes(record.owner) if max_owner_bytes is not None else 0
        placed = False
        with self._lock:
            self._writing.add(temp.name)
        try:
            size = 0
            with open(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    _check_size(size, used, max_bytes, max_owner_bytes)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            record = replace(record, bytes=size, created=time.time())
            with self._tx() as db:
                row = db.execute(f"SELECT {COLUMNS} FROM files WHERE id = ?", (record.id,))
                existing = row.fetchone()
                if existing is not None:  # write() twice at once with the same id
                    return FileRecord(*existing)
                if max_owner_bytes is not None:
                    used = _owner_bytes(db, record.owner)
                    _check_size(size, used, max_bytes, max_owner_bytes)
                os.replace(temp, final)
                placed = True
                _sync_dir(self.root)  # the bytes are in place before their row is committed
                db.execute(
                    f"INSERT INTO files ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", astuple(record)
                )
            return record
        except BaseException:
            if placed:  # renamed, but its row was not committed
                final.unlink(missing_ok=True)
            raise
        finally:
            temp.unlink(missing_ok=True)
            with self._lock:
                self._writing.discard(temp.name)

    def get(self, file_id: str) -> FileRecord | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {COLUMNS} FROM files WHERE id = ?", (file_id,)
            ).fetchone()
        return FileRecord(*row) if row else None

    def visible(self, file_id: str, caller: Caller) -> FileRecord:
        """The file, if `caller` may see it; else the same NotFound as
        for a file that does not exist, so another key cannot learn that it does."""
        record = self.get(file_id)
        if record is None or not caller.may_see(record.owner):
            raise NotFound(f"no file {file_id}")
        return record

    def path(self, record: FileRecord) -> Path:
        return self.root / record.id

    def delete(self, file_id: str) -> bool:
        """Remove the file's row, then its bytes; False if there was no such file."""
        with self._tx() as db:
            deleted = db.execute("DELETE FROM files WHERE id = ?", (file_id,)).rowcount == 1
        if deleted:
            (self.root / file_id).unlink(missing_ok=True)
        return deleted

    def list(
        self,
        owner: str | None,
        *,
        purpose: str | None = None,
        after: str | None = None,
        limit: int = 10000,
        order: Literal["asc", "desc"] = "desc",
    ) -> builtins.list[FileRecord]:
        """Up to `limit` files of `owner` (None: everyone's), ordered by creation time then id,
        newest first for "desc". `after` is OpenAI's cursor: the id of the last file of the
        previous page. A cursor that is not one of the owner's files (e.g. deleted meanwhile)
        gives an empty page: the listing ends rather than fails."""
        where: builtins.list[str] = ["1"]
        args: builtins.list[Any] = []
        if owner is not None:
            where.append("owner = ?")
            args.append(owner)
        if purpose is not None:
            where.append("purpose = ?")
            args.append(purpose)
        sign, direction = ("<", "DESC") if order == "desc" else (">", "ASC")
        with self._lock:
            if after is not None:
                cursor = self._db.execute(
                    f"SELECT created, id FROM files WHERE id = ? AND {' AND '.join(where)}",
                    (after, *args),
                ).fetchone()
                if cursor is None:
                    return []
                where.append(f"(created, id) {sign} (?, ?)")
                args.extend(cursor)
            rows = self._db.execute(
                f"SELECT {COLUMNS} FROM files WHERE {' AND '.join(where)} "
                f"ORDER BY created {direction}, id {direction} LIMIT ?",
                (*args, limit),
            ).fetchall()
        return [FileRecord(*row) for row in rows]

    def owner_bytes(self, owner: str | None) -> int:
        """What `owner`'s files hold, in bytes (the quota's measure)."""
        with self._lock:
            return _owner_bytes(self._db, owner)

    def purge(self, created_before: float) -> int:
        """Delete every file created before `created_before` (a time.time()), rows then bytes;
        how many were deleted."""
        with self._tx() as db:
            ids = [
                row[0]
                for row in db.execute("SELECT id FROM files WHERE created < ?", (created_before,))
            ]
            db.executemany("DELETE FROM files WHERE id = ?", [(i,) for i in ids])
        for file_id in ids:
            (self.root / file_id).unlink(missing_ok=True)
        return len(ids)

    def sweep(self) -> int:
        """Delete what lies in root without a row: bytes renamed into place by a gateway that
        crashed before it inserted their row, and temporary files of uploads it was writing.
        Uploads in progress in this process are kept. How many were deleted."""
        removed = 0
        with self._lock:
            for entry in os.scandir(self.root):
                if not entry.is_file(follow_symlinks=False) or entry.name in self._writing:
                    continue
                known = self._db.execute("SELECT 1 FROM files WHERE id = ?", (entry.name,))
                if known.fetchone() is None:
                    Path(entry.path).unlink(missing_ok=True)
                    removed += 1
        return removed

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _check_size(size: int, used: int, max_bytes: int | None, max_owner_bytes: int | None) -> None:
    """TooLarge if a file of `size` bytes passes `max_bytes`, or with the owner's `used` bytes
    passes `max_owner_bytes` (None: no limit)."""
    if max_bytes is not None and size > max_bytes:
        raise TooLarge(
            f"the file is larger than {max_bytes} bytes, the limit for one file",
            hint="split it into smaller files (the limit is FORKPOINT_MAX_FILE_BYTES)",
        )
    if max_owner_bytes is not None and used + size > max_owner_bytes:
        raise TooLarge(
            f"this API key stores {used} bytes of files; with this one it would pass its quota "
            f"of {max_owner_bytes} bytes",
            hint="delete files it no longer needs (DELETE /v1/files/{file_id}), or ask the "
            "gateway's operator to raise FORKPOINT_MAX_FILE_BYTES_PER_KEY",
        )


def _owner_bytes(db: sqlite3.Connection, owner: str | None) -> int:
    (total,) = db.execute(
        "SELECT COALESCE(SUM(bytes), 0) FROM files WHERE owner IS ?", (owner,)
    ).fetchone()
    return int(total)


def _sync_dir(path: Path) -> None:
    """Make a rename in `path` durable (POSIX: the directory entry is synced on its own)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
