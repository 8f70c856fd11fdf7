"""Durable jobs: what was accepted, and each document's result, recorded exactly once.

SQLite in WAL mode behind a small interface. A job and all its documents are written in one
transaction before the client hears "accepted"; a result is keyed by (job, document index), so
a document re-sent after a crash or a retry can never be recorded twice.

A job records its owner: a short hash of the API key that created it (api/auth.py), never the
key; None on an open gateway and for jobs a store older than owners holds. Idempotency keys are
stored scoped by owner ("<owner>:<key>", owner ids are hex) with the time they were first used,
and expire after the gateway's `idempotency_ttl_seconds`; a record without a time (older
stores) counts as expired.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from forkpoint.api import corrections
from forkpoint.api.corrections import Review
from forkpoint.api.job_task import JobTask
from forkpoint.errors import ForkpointError, IdempotencyConflict, NotFound, QueueFull

JobState = Literal["queued", "running", "done", "cancelled"]
FINAL_STATES = ("done", "cancelled")

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, task TEXT NOT NULL, schema_json TEXT, instructions TEXT,
    state TEXT NOT NULL, total INTEGER NOT NULL, created REAL NOT NULL, finished REAL
);
CREATE TABLE IF NOT EXISTS documents (
    job_id TEXT NOT NULL, idx INTEGER NOT NULL, name TEXT NOT NULL, text TEXT NOT NULL,
    PRIMARY KEY (job_id, idx)
);
CREATE TABLE IF NOT EXISTS corpora (
    job_id TEXT PRIMARY KEY, stats TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY, job_id TEXT NOT NULL, fingerprint TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS labels (
    job_id TEXT NOT NULL, name TEXT NOT NULL, expected TEXT NOT NULL, PRIMARY KEY (job_id, name)
);
CREATE TABLE IF NOT EXISTS job_groups (
    job_id TEXT NOT NULL, part INTEGER NOT NULL, task_json TEXT NOT NULL, prefix_tokens INTEGER,
    PRIMARY KEY (job_id, part)
);
CREATE TABLE IF NOT EXISTS results (
    job_id TEXT NOT NULL, idx INTEGER NOT NULL, ok INTEGER NOT NULL, record TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL, recorded REAL NOT NULL,
    PRIMARY KEY (job_id, idx)
);
"""


ADDED_COLUMNS = {  # columns newer than the first release
    # part: a grouped job's document's group (job_groups), NULL in a job of one task
    "documents": {"sha256": "TEXT", "part": "INTEGER"},
    # task_json: the job's JobTask; a store written before it held the task in `task` (a
    # built-in's name), `schema_json` + `instructions` or `task_spec`, read once by _migrate
    # batch: the OpenAI batch a job is (its request and what was written for it), as JSON
    "jobs": {"owner": "TEXT", "task_spec": "TEXT", "task_json": "TEXT", "batch": "TEXT"},
    "idempotency": {"created": "REAL"},
}
WAITING_SQL = (
    "SELECT COUNT(*) FROM documents d JOIN jobs j ON j.id = d.job_id "
    "LEFT JOIN results r ON r.job_id = d.job_id AND r.idx = d.idx "
    "WHERE j.state IN ('queued', 'running') AND r.idx IS NULL"
)
JOB_COLUMNS = "id, task_json, state, total, created, finished, owner, batch"
DAY = 24 * 3600.0
PURGED = (  # (table, its job column): what a purged job leaves nowhere
    ("results", "job_id"),
    ("documents", "job_id"),
    ("labels", "job_id"),
    ("job_groups", "job_id"),
    ("reviews", "job_id"),
    ("corpora", "job_id"),
    ("idempotency", "job_id"),
    ("jobs", "id"),
)


@dataclass(frozen=True)
class JobRecord:
    id: str
    task: JobTask
    state: JobState
    total: int
    created: float
    finished: float | None
    owner: str | None = None
    batch: dict[str, Any] | None = None  # an OpenAI batch's record (api/batches.py)

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> JobRecord:
        """A row of JOB_COLUMNS."""
        id_, task_json, state, total, created, finished, owner, batch = row
        return cls(
            id_,
            JobTask.from_json(task_json),
            state,
            total,
            created,
            finished,
            owner,
            None if batch is None else json.loads(batch),
        )


@dataclass(frozen=True)
class PendingDocument:
    """A document of a job without a result yet."""

    index: int
    name: str
    text: str
    sha256: str | None


@dataclass(frozen=True)
class DocumentRef:
    """A pending document without its text: what a queue holds."""

    index: int
    name: str
    sha256: str | None
    part: int | None = None  # its group in a grouped job


@dataclass(frozen=True)
class JobCounts:
    done: int
    failed: int
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int


class JobStore:
    """Thread-safe SQLite store; one connection guarded by a lock (writes are small)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at checkpoint
        self._db.executescript(SCHEMA)
        self._db.executescript(corrections.SCHEMA)
        self._migrate()
        self._lock = threading.Lock()

    def _migrate(self) -> None:
        """Bring a store written by an older forkpoint up to date; its data is kept: add the
        columns it lacks, and record each job's task as one JobTask (from the three columns
        that held it before). A job whose old record no longer builds a JobTask (e.g. a task
        definition today's limits refuse) keeps the reason instead, and its documents fail
        with it when the job runs."""
        for table, columns in ADDED_COLUMNS.items():
            have = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            for column, kind in columns.items():
                if column not in have:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        old = self._db.execute(
            "SELECT id, task, schema_json, instructions, task_spec FROM jobs "
            "WHERE task_json IS NULL"
        ).fetchall()
        if not old:
            return
        self._db.execute("BEGIN IMMEDIATE")  # every old job at once, or none
        for job_id, *columns in old:
            try:
                task = JobTask.from_columns(*columns)
            except (ValueError, ForkpointError) as exc:  # pydantic's ValidationError included
                task = JobTask.unreadable(columns[0], f"its stored task cannot be read: {exc}")
            self._db.execute("UPDATE jobs SET task_json = ? WHERE id = ?", (task.to_json(), job_id))
        self._db.execute("COMMIT")

    @contextmanager
    def _tx(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction. `durable`: its COMMIT is on disk when it returns, power loss
        included (synchronous=FULL syncs the WAL at commit; NORMAL, for the many small writes
        after, may lose the last ones to a power cut but never to a crash of the process)."""
        with self._lock:
            if durable:
                self._db.execute("PRAGMA synchronous=FULL")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            finally:
                if durable:
                    self._db.execute("PRAGMA synchronous=NORMAL")

    def create_job(
        self,
        task: JobTask,
        documents: list[tuple[str, str]] | list[tuple[str, str, str | None]],
        *,
        labels: dict[str, dict[str, Any]] | None = None,
        idempotency: tuple[str, str] | None = None,
        owner: str | None = None,
        idempotency_ttl: float = DAY,
        max_waiting: int | None = None,
        max_waiting_per_owner: int | None = None,
        failed: dict[int, dict[str, Any]] | None = None,
        groups: list[str] | None = None,
        parts: list[int | None] | None = None,
        batch: dict[str, Any] | None = None,
    ) -> tuple[JobRecord, bool]:
        """Store a job, every document (and any labels) in one transaction; (job, created).

        `idempotency` is (key, fingerprint of the request), scoped by `owner`: a key the owner
        used less than `idempotency_ttl` seconds ago returns its job (created False) when the
        fingerprint matches, and raises IdempotencyConflict if not. An expired key is forgotten.
        A repeated request is answered before the queue limit is looked at: a retry of an
        accepted job never gets QueueFull. `max_waiting` is that limit, checked in the same
        transaction as the insert (two requests cannot both pass it), and
        `max_waiting_per_owner` the share of it one owner's jobs may hold, so one key cannot
        fill the queue for the others. Every document counts, unreadable ones too (they are
        stored like the rest). `failed` holds the result
        records of documents that could not be read (by index): stored with the job, so a crash
        cannot leave them to run as empty documents. A grouped job (JobTask.grouped) stores
        its groups' tasks (`groups`, TaskSpec JSON by part) and each document's `parts`; `batch`
        is the OpenAI batch the job is.
        """
        now = time.time()
        job = JobRecord(uuid.uuid4().hex, task, "queued", len(documents), now, None, owner, batch)
        with self._tx(durable=True) as db:  # a 202 means the job is on disk
            if idempotency is not None:
                key, fingerprint = idempotency
                scoped = f"{owner or ''}:{key}"
                db.execute(
                    "DELETE FROM idempotency WHERE created IS NULL OR created < ?",
                    (now - idempotency_ttl,),
                )
                row = db.execute(
                    "SELECT job_id, fingerprint FROM idempotency WHERE key = ?", (scoped,)
                ).fetchone()
                if row is not None:
                    if row[1] != fingerprint:
                        raise IdempotencyConflict(
                            f"Idempotency-Key {key!r} was used for a different request"
                        )
                    found = db.execute(
                        f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", (row[0],)
                    ).fetchone()
                    return JobRecord.from_row(found), False
            self._check_room(db, len(documents), max_waiting, owner, max_waiting_per_owner)
            if idempotency is not None:
                db.execute(
                    "INSERT INTO idempotency (key, job_id, fingerprint, created) "
                    "VALUES (?, ?, ?, ?)",
                    (scoped, job.id, fingerprint, now),
                )
            db.execute(  # `task` (NOT NULL since the first release) keeps the task's name
                f"INSERT INTO jobs (task, {JOB_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job.task.name,
                    job.id,
                    job.task.to_json(),
                    job.state,
                    job.total,
                    job.created,
                    job.finished,
                    job.owner,
                    None if batch is None else json.dumps(batch),
                ),
            )
            db.executemany(
                "INSERT INTO documents (job_id, idx, name, text, sha256, part) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        job.id,
                        i,
                        *doc[:2],
                        doc[2] if len(doc) > 2 else None,
                        None if parts is None else parts[i],
                    )
                    for i, doc in enumerate(documents)
                ],
            )
            db.executemany(
                "INSERT INTO job_groups (job_id, part, task_json) VALUES (?, ?, ?)",
                [(job.id, part, text) for part, text in enumerate(groups or ())],
            )
            db.executemany(
                "INSERT INTO labels VALUES (?, ?, ?)",
                [(job.id, name, json.dumps(expected)) for name, expected in (labels or {}).items()],
            )
            for index, record in (failed or {}).items():
                _insert_result(db, job.id, index, record)
        return job, True

    @staticmethod
    def _check_room(
        db: sqlite3.Connection,
        adding: int,
        max_waiting: int | None,
        owner: str | None,
        max_waiting_per_owner: int | None,
    ) -> None:
        if max_waiting_per_owner is not None:
            (own,) = db.execute(WAITING_SQL + " AND j.owner IS ?", (owner,)).fetchone()
            if own + adding > max_waiting_per_owner:
                raise QueueFull(
                    f"{own} documents of this API key are already waiting; one key's share of "
                    f"the queue is {max_waiting_per_owner}",
                    hint="retry after the Retry-After interval, when earlier jobs have run",
                )
        if max_waiting is None:
            return
        (waiting,) = db.execute(WAITING_SQL).fetchone()
        if waiting + adding > max_waiting:
            raise QueueFull(
                f"{waiting} documents are already waiting; the limit is {max_waiting}",
                hint="retry after the Retry-After interval",
            )

    def purge(self, finished_before: float) -> int:
        """Delete every job that finished (done or cancelled) before `finished_before` (a
        time.time()), with its documents, results, labels, corpus record and idempotency keys;
        the number of jobs deleted. Unfinished jobs are never deleted."""
        with self._tx(durable=True) as db:
            ids = [
                row[0]
                for row in db.execute(
                    "SELECT id FROM jobs WHERE state IN ('done', 'cancelled') "
                    "AND finished IS NOT NULL AND finished < ?",
                    (finished_before,),
                )
            ]
            for table, column in PURGED:
                db.executemany(f"DELETE FROM {table} WHERE {column} = ?", [(i,) for i in ids])
        return len(ids)

    def set_corpus(self, job_id: str, stats: dict[str, Any]) -> None:
        """What of the job's text is loaded as its NGRAM corpus (shown with the job)."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO corpora VALUES (?, ?)", (job_id, json.dumps(stats)))

    def corpus(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT stats FROM corpora WHERE job_id = ?", (job_id,)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def labels(self, job_id: str) -> dict[str, dict[str, Any]]:
        """The job's expected objects by document name (empty if it was not an eval job)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT name, expected FROM labels WHERE job_id = ?", (job_id,)
            ).fetchall()
        return {name: json.loads(expected) for name, expected in rows}

    def job(self, job_id: str) -> JobRecord | None:
        with self._lock:
            query = f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?"
            row = self._db.execute(query, (job_id,)).fetchone()
        return JobRecord.from_row(row) if row else None

    def get(self, job_id: str) -> JobRecord:
        """The job, or NotFound (404) naming it."""
        job = self.job(job_id)
        if job is None:
            raise NotFound(f"no job {job_id}")
        return job

    def jobs(self, limit: int = 100, *, owner: str | None = None) -> list[JobRecord]:
        """The newest jobs: every job, or with `owner` only that owner's."""
        where, args = ("WHERE owner = ?", (owner,)) if owner is not None else ("", ())
        with self._lock:
            rows = self._db.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs {where} ORDER BY created DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
        return [JobRecord.from_row(row) for row in rows]

    def unfinished(self) -> list[JobRecord]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE state IN ('queued', 'running') "
                "ORDER BY created"
            ).fetchall()
        return [JobRecord.from_row(row) for row in rows]

    def set_state(self, job_id: str, state: JobState) -> None:
        finished = time.time() if state in FINAL_STATES else None
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET state = ?, finished = ? WHERE id = ? AND state NOT IN "
                "('done', 'cancelled')",
                (state, finished, job_id),
            )

    def pending(self, job_id: str) -> list[PendingDocument]:
        """The job's documents without a result, in order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT d.idx, d.name, d.text, d.sha256 FROM documents d LEFT JOIN results r "
                "ON r.job_id = d.job_id AND r.idx = d.idx "
                "WHERE d.job_id = ? AND r.idx IS NULL ORDER BY d.idx",
                (job_id,),
            ).fetchall()
        return [PendingDocument(*row) for row in rows]

    def group(self, job_id: str, part: int) -> str | None:
        """A grouped job's task for one group (TaskSpec JSON); None if the job is gone."""
        with self._lock:
            row = self._db.execute(
                "SELECT task_json FROM job_groups WHERE job_id = ? AND part = ?", (job_id, part)
            ).fetchone()
        return row[0] if row else None

    def set_prefix_tokens(self, job_id: str, part: int, tokens: int) -> None:
        """How many tokens a group's shared prefix has (recorded when it is first warmed)."""
        with self._tx() as db:
            db.execute(
                "UPDATE job_groups SET prefix_tokens = ? WHERE job_id = ? AND part = ?",
                (tokens, job_id, part),
            )

    def prefix_tokens(self, job_id: str) -> list[int | None]:
        """Each group's prefix tokens, by part (None: not warmed yet)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT prefix_tokens FROM job_groups WHERE job_id = ? ORDER BY part", (job_id,)
            ).fetchall()
        return [row[0] for row in rows]

    def set_batch(self, job_id: str, batch: dict[str, Any]) -> None:
        """Replace the OpenAI batch record of a job (e.g. with the files written for it)."""
        with self._tx(durable=True) as db:
            db.execute("UPDATE jobs SET batch = ? WHERE id = ?", (json.dumps(batch), job_id))

    def batches(
        self, owner: str | None, *, before: float | None = None, limit: int = 20
    ) -> list[JobRecord]:
        """The newest jobs that are OpenAI batches (owner None: everyone's), created before
        `before` if given (paging)."""
        where, args = "batch IS NOT NULL", list[Any]()
        if owner is not None:
            where, args = where + " AND owner = ?", [owner]
        if before is not None:
            where, args = where + " AND created < ?", [*args, before]
        with self._lock:
            rows = self._db.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE {where} ORDER BY created DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
        return [JobRecord.from_row(row) for row in rows]

    def parts(self, job_id: str) -> list[int | None]:
        """Every document's group (None in a job of one task), in order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT part FROM documents WHERE job_id = ? ORDER BY idx", (job_id,)
            ).fetchall()
        return [row[0] for row in rows]

    def status_counts(self, job_id: str) -> dict[str, int]:
        """How many results have each status (ok, needs_review, invalid, truncated, error)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT json_extract(record, '$.status'), COUNT(*) FROM results "
                "WHERE job_id = ? GROUP BY 1",
                (job_id,),
            ).fetchall()
        return dict(rows)

    def pending_refs(self, job_id: str) -> list[DocumentRef]:
        """The job's documents without a result, in order, without their texts: what a queue
        holds (the texts stay here until a worker takes the document)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT d.idx, d.name, d.sha256, d.part FROM documents d LEFT JOIN results r "
                "ON r.job_id = d.job_id AND r.idx = d.idx "
                "WHERE d.job_id = ? AND r.idx IS NULL ORDER BY d.idx",
                (job_id,),
            ).fetchall()
        return [DocumentRef(*row) for row in rows]

    def text(self, job_id: str, index: int) -> str | None:
        """One document's text; None if the job (or document) is gone."""
        with self._lock:
            row = self._db.execute(
                "SELECT text FROM documents WHERE job_id = ? AND idx = ?", (job_id, index)
            ).fetchone()
        return row[0] if row else None

    def pending_count(self) -> int:
        """Documents accepted by unfinished jobs and not yet recorded (the queue's length)."""
        with self._lock:
            (count,) = self._db.execute(WAITING_SQL).fetchone()
        return count

    def record(self, job_id: str, index: int, record: dict[str, Any]) -> bool:
        """Record one document's result; False if it was already recorded (never twice).
        A result without data (error, invalid, truncated) counts as failed."""
        with self._tx() as db:
            inserted = _insert_result(db, job_id, index, record)
            (left,) = db.execute(
                "SELECT COUNT(*) FROM documents d LEFT JOIN results r ON r.job_id = d.job_id "
                "AND r.idx = d.idx WHERE d.job_id = ? AND r.idx IS NULL",
                (job_id,),
            ).fetchone()
            if left == 0:
                db.execute(
                    "UPDATE jobs SET state = 'done', finished = ? WHERE id = ? AND state != "
                    "'cancelled'",
                    (time.time(), job_id),
                )
        return inserted

    def results(
        self, job_id: str, start: int = 0, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Recorded results from index `start` on, stopping at the first gap (document order);
        at most `limit` of them (a page: the primary key's index reads only those rows)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT idx, record FROM results WHERE job_id = ? AND idx >= ? ORDER BY idx "
                "LIMIT ?",
                (job_id, start, -1 if limit is None else limit),
            ).fetchall()
        out = []
        for expected, (index, record) in enumerate(rows, start=start):
            if index != expected:
                break
            out.append(json.loads(record))
        return out

    def recorded(self, job_id: str, page: int = 1000) -> Iterator[tuple[int, dict[str, Any]]]:
        """Every recorded result as (index, record), in order, gaps skipped (a cancelled job's
        results), read a page at a time."""
        after = -1
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT idx, record FROM results WHERE job_id = ? AND idx > ? ORDER BY idx "
                    "LIMIT ?",
                    (job_id, after, page),
                ).fetchall()
            for index, record in rows:
                yield index, json.loads(record)
            if len(rows) < page:
                return
            after = rows[-1][0]

    def counts(self, job_id: str) -> JobCounts:
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(1 - ok), 0), COALESCE(SUM(prompt_tokens), 0), "
                "COALESCE(SUM(cached_tokens), 0), COALESCE(SUM(completion_tokens), 0) "
                "FROM results WHERE job_id = ?",
                (job_id,),
            ).fetchone()
        return JobCounts(*row)

    def result_count(self, job_id: str, index: int) -> int:
        """How many results exist for one document (0 or 1; for exactly-once checks)."""
        with self._lock:
            (count,) = self._db.execute(
                "SELECT COUNT(*) FROM results WHERE job_id = ? AND idx = ?", (job_id, index)
            ).fetchone()
        return count

    def result(self, job_id: str, index: int) -> dict[str, Any] | None:
        """One document's recorded result; None if it has none (yet)."""
        with self._lock:
            row = self._db.execute(
                "SELECT record FROM results WHERE job_id = ? AND idx = ?", (job_id, index)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def document(self, job_id: str, index: int) -> tuple[str, str] | None:
        """One document's (name, text); None if the job has no such document."""
        with self._lock:
            row = self._db.execute(
                "SELECT name, text FROM documents WHERE job_id = ? AND idx = ?", (job_id, index)
            ).fetchone()
        return (row[0], row[1]) if row else None

    def names(self, job_id: str) -> list[str]:
        """Every document's name, in order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT name FROM documents WHERE job_id = ? ORDER BY idx", (job_id,)
            ).fetchall()
        return [row[0] for row in rows]

    def timeline(self, job_id: str) -> list[tuple[float, int, int]]:
        """(when, prompt tokens, completion tokens) of each recorded result, in the order they
        were recorded: what the review page draws the job's progress from."""
        with self._lock:
            rows = self._db.execute(
                "SELECT recorded, prompt_tokens, completion_tokens FROM results WHERE job_id = ? "
                "ORDER BY recorded",
                (job_id,),
            ).fetchall()
        return [(when, prompt, completion) for when, prompt, completion in rows]

    def review(self, job_id: str, review: Review) -> None:
        """Record a reviewer's verdict beside the document's result (api/corrections.py)."""
        with self._tx(durable=True) as db:
            corrections.save(db, job_id, review)

    def unreview(self, job_id: str, index: int) -> bool:
        """Forget a document's review; False if it had none."""
        with self._tx() as db:
            cursor = db.execute("DELETE FROM reviews WHERE job_id = ? AND idx = ?", (job_id, index))
        return cursor.rowcount == 1

    def reviews(self, job_id: str) -> dict[int, Review]:
        """The job's reviews by document index."""
        with self._lock:
            return corrections.load(self._db, job_id)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _insert_result(db: sqlite3.Connection, job_id: str, index: int, record: dict[str, Any]) -> bool:
    """One result row (ok: the record has data); False if the document already had one."""
    usage = record.get("usage", {})
    cursor = db.execute(
        "INSERT OR IGNORE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            job_id,
            index,
            int("data" in record),
            json.dumps(record, ensure_ascii=False),
            usage.get("prompt_tokens", 0),
            usage.get("cached_tokens", 0),
            usage.get("completion_tokens", 0),
            time.time(),
        ),
    )
    return cursor.rowcount == 1
