"""A job store written by the previous release opens, resumes and answers after the upgrade.

data/jobs-before-job-task.sql is a store made by forkpoint 6b984c2's own JobStore (the release
before a job's task became one JobTask), dumped as SQL: a built-in job half done, two
inline-schema jobs (with and without instructions, one with labels), a task definition and a
finished job, with an owner, an idempotency key and a corpus record.
"""

import sqlite3
from pathlib import Path

import httpx
import pytest

from forkpoint.api.job_task import DEFAULT_INSTRUCTIONS, JobTask
from forkpoint.api.store import JobStore, PendingDocument
from forkpoint.programs.gateway_client import GatewayClient
from forkpoint.programs.tasks.registry import get_task
from forkpoint.programs.tasks.task import schema_task

DUMP = Path(__file__).parent / "data" / "jobs-before-job-task.sql"
BUILTIN, INLINE, INLINE_DEFAULT = (
    "678da6dd3d3e4fe5be67380978af85ef",
    "e65d2080b3124ecdb624baf7a0db786f",
    "94717cd77b154a77956cf9f9846dd864",
)
DEFINITION, DONE = "84aa5e6cd829465d9f8bfaeaa6c146a6", "ebde7f9900334cb8929c89f06d177760"
SCHEMA = '{"type": "object", "properties": {"urgent": {"type": "boolean"}}, "required": ["urgent"]}'


@pytest.fixture
def old_store(tmp_path) -> Path:
    path = tmp_path / "jobs.db"
    db = sqlite3.connect(path)
    db.executescript(DUMP.read_text())
    db.close()
    return path


def test_every_old_job_gets_its_task_back_as_one_record(old_store):
    store = JobStore(old_store)
    jobs = {job.id: job for job in store.jobs()}
    assert jobs.keys() == {BUILTIN, INLINE, INLINE_DEFAULT, DEFINITION, DONE}
    assert jobs[BUILTIN].task == JobTask.named("contacts") == jobs[DONE].task
    assert jobs[BUILTIN].task.to_task().key == get_task("contacts").key
    # an inline schema rebuilds the very task it was submitted as (same prompt, same cache key)
    inline, default = jobs[INLINE].task.to_task(), jobs[INLINE_DEFAULT].task.to_task()
    assert inline.key == schema_task(SCHEMA, "Classify the note.").key
    assert default.key == schema_task(SCHEMA, DEFAULT_INSTRUCTIONS).key
    assert jobs[INLINE].task.name == "inline-schema"
    definition = jobs[DEFINITION].task.to_task()
    assert (
        definition.name == "my-invoices"
        and definition.copy_fields == get_task("invoices").copy_fields
    )
    store.close()


def test_an_old_jobs_documents_results_labels_and_owner_are_kept(old_store):
    store = JobStore(old_store)
    assert store.pending(BUILTIN) == [
        PendingDocument(1, "bob.txt", "Bob Stone, +44 20 7946 0018", "sha-bob")
    ]
    assert [r["file"] for r in store.results(BUILTIN)] == ["ann.txt"]
    assert store.get(BUILTIN).owner == "0a1b2c3d" and store.get(BUILTIN).state == "running"
    assert store.labels(INLINE_DEFAULT) == {"n2.txt": {"urgent": False}}
    assert store.corpus(BUILTIN) == {"tokens_loaded": 12}
    assert store.get(DONE).state == "done" and store.counts(DONE).failed == 1
    store.close()


def test_an_old_idempotency_key_still_answers_its_job(old_store):
    store = JobStore(old_store)
    again, created = store.create_job(
        JobTask.named("contacts"),
        [("x.txt", "x")],
        idempotency=("key-1", "fp-1"),
        owner="0a1b2c3d",
        idempotency_ttl=1e12,  # the dump's key was made days before this run
    )
    assert (again.id, created) == (BUILTIN, False)
    store.close()


def test_migrating_twice_changes_nothing(old_store):
    JobStore(old_store).close()
    once = sqlite3.connect(old_store).execute("SELECT id, task_json FROM jobs").fetchall()
    JobStore(old_store).close()
    assert sqlite3.connect(old_store).execute("SELECT id, task_json FROM jobs").fetchall() == once


def test_an_old_job_whose_task_no_longer_builds_fails_with_the_reason(tmp_path):
    path = tmp_path / "jobs.db"
    db = sqlite3.connect(path)
    db.executescript(DUMP.read_text())
    db.execute('UPDATE jobs SET task_spec = \'{"name": "broken"}\' WHERE id = ?', (DEFINITION,))
    db.commit()
    db.close()
    store = JobStore(path)  # opens: the other jobs are not held up by one bad record
    task = store.get(DEFINITION).task
    with pytest.raises(Exception, match="its stored task cannot be read"):
        task.to_task()
    assert store.get(INLINE).task.to_task().key == schema_task(SCHEMA, "Classify the note.").key
    store.close()


@pytest.mark.slow
def test_a_gateway_on_the_old_store_resumes_every_unfinished_job_and_answers_all_results(
    old_store, sglang_server, start_gateway
):
    gateway = start_gateway(sglang_server.url, FORKPOINT_DB_PATH=str(old_store))
    client = GatewayClient(gateway.url)
    for job_id, files in {
        BUILTIN: ["ann.txt", "bob.txt"],
        INLINE: ["n1.txt"],
        INLINE_DEFAULT: ["n2.txt"],
        DEFINITION: ["inv.txt"],
        DONE: ["x.txt"],
    }.items():
        records = list(client.results(job_id, silence=600))
        assert [r["file"] for r in records] == files, job_id
    # ann.txt was recorded by the old release and is answered as it was, not extracted again
    assert list(client.results(BUILTIN, silence=60))[0]["data"] == {"name": "Ann Lee"}
    listed = httpx.get(f"{gateway.url}/v1/jobs", timeout=30).json()
    tasks = {job["id"]: job["task"] for job in listed}
    assert tasks[INLINE] == "inline-schema" and tasks[DEFINITION] == "my-invoices"
    evaluated = httpx.get(f"{gateway.url}/v1/jobs/{INLINE_DEFAULT}/eval", timeout=30)
    assert evaluated.status_code == 200 and evaluated.json()["labelled"] == 1
