"""The job store: accepted work is durable and each result is recorded exactly once."""

import sqlite3

import pytest

from forkpoint.api.job_task import JobTask
from forkpoint.api.store import JobStore, PendingDocument
from forkpoint.errors import IdempotencyConflict


def test_a_job_and_its_documents_are_stored_together_and_survive_reopening(tmp_path):
    store = JobStore(tmp_path / "jobs.db")
    job, _ = store.create_job(JobTask.named("contacts"), [("a.txt", "A"), ("b.txt", "B")])
    store.close()
    reopened = JobStore(tmp_path / "jobs.db")
    assert reopened.job(job.id).total == 2
    assert [doc.name for doc in reopened.pending(job.id)] == ["a.txt", "b.txt"]
    assert [j.id for j in reopened.unfinished()] == [job.id]


def test_a_result_is_recorded_once_even_if_the_document_is_sent_twice(tmp_path):
    store = JobStore(tmp_path / "jobs.db")
    job, _ = store.create_job(JobTask.named("contacts"), [("a.txt", "A")])
    first = {"file": "a.txt", "ok": True, "data": {"name": "A"}, "usage": {"prompt_tokens": 5}}
    assert store.record(job.id, 0, first) is True
    assert store.record(job.id, 0, {**first, "data": {"name": "changed"}}) is False
    assert store.result_count(job.id, 0) == 1
    assert store.results(job.id) == [first]
    assert store.job(job.id).state == "done"


def test_results_stream_in_document_order_up_to_the_first_gap(tmp_path):
    store = JobStore(tmp_path / "jobs.db")
    job, _ = store.create_job(JobTask.named("t"), [(f"{i}.txt", "x") for i in range(4)])
    for index in (0, 1, 3):
        store.record(
            job.id, index, {"file": f"{index}.txt", **({"data": {}} if index != 1 else {})}
        )
    assert [r["file"] for r in store.results(job.id)] == ["0.txt", "1.txt"]
    assert [r["file"] for r in store.results(job.id, start=2)] == []
    counts = store.counts(job.id)
    assert (counts.done, counts.failed) == (3, 1)
    assert [doc.index for doc in store.pending(job.id)] == [2]
    assert store.pending_count() == 1


def test_a_cancelled_job_stays_cancelled(tmp_path):
    store = JobStore(tmp_path / "jobs.db")
    job, _ = store.create_job(JobTask.named("t"), [("a", "x"), ("b", "y")])
    store.set_state(job.id, "cancelled")
    store.record(job.id, 0, {"ok": True, "data": {}})
    store.record(job.id, 1, {"ok": True, "data": {}})
    store.set_state(job.id, "running")
    assert store.job(job.id).state == "cancelled"
    assert store.unfinished() == []


def test_an_idempotency_key_returns_the_job_it_created_and_refuses_a_different_request(tmp_path):
    store = JobStore(tmp_path / "jobs.db")
    first, created = store.create_job(
        JobTask.named("t"), [("a", "x")], idempotency=("key-1", "fp-A")
    )
    again, created_again = store.create_job(
        JobTask.named("t"), [("a", "x")], idempotency=("key-1", "fp-A")
    )
    assert created and not created_again
    assert again.id == first.id and len(store.jobs()) == 1
    with pytest.raises(IdempotencyConflict, match="key-1"):
        store.create_job(JobTask.named("t"), [("a", "y")], idempotency=("key-1", "fp-B"))


def test_a_store_from_before_document_hashes_is_migrated_and_keeps_its_jobs(tmp_path):
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE jobs (id TEXT PRIMARY KEY, task TEXT NOT NULL, schema_json TEXT, "
        "instructions TEXT, state TEXT NOT NULL, total INTEGER NOT NULL, created REAL NOT NULL, "
        "finished REAL);"
        "CREATE TABLE documents (job_id TEXT NOT NULL, idx INTEGER NOT NULL, name TEXT NOT NULL, "
        "text TEXT NOT NULL, PRIMARY KEY (job_id, idx));"
        "INSERT INTO jobs VALUES ('j1', 't', NULL, NULL, 'queued', 1, 0, NULL);"
        "INSERT INTO documents VALUES ('j1', 0, 'a.txt', 'A');"
    )
    old.commit()
    old.close()
    store = JobStore(path)
    assert store.pending("j1") == [PendingDocument(0, "a.txt", "A", None)]
    job, _ = store.create_job(JobTask.named("t"), [("b.txt", "B", "abc123")])
    assert store.pending(job.id) == [PendingDocument(0, "b.txt", "B", "abc123")]


def test_accepting_a_job_commits_with_a_full_sync_and_later_writes_with_a_normal_one(tmp_path):
    store = JobStore(tmp_path / "gateway.db")
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)  # what SQLite is asked, in order
    job, _ = store.create_job(JobTask.named("contacts"), [("a.txt", "Ann Lee")])
    accept = statements[: statements.index("COMMIT") + 1]
    assert accept[0] == "PRAGMA synchronous=FULL" and accept[1] == "BEGIN IMMEDIATE"
    assert statements[-1] == "PRAGMA synchronous=NORMAL"  # set back after the commit
    statements.clear()
    store.record(job.id, 0, {"file": "a.txt", "status": "error", "ok": False})
    assert not any(s.startswith("PRAGMA synchronous") for s in statements)
    store.close()
