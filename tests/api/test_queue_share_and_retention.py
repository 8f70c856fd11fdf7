"""One key cannot fill the queue for the others; every stored document counts; finished jobs
are deleted after the retention period, unfinished ones never."""

import time

import pytest

from forkpoint.api.job_task import JobTask
from forkpoint.api.jobs import JobRunner
from forkpoint.api.metrics import Metrics
from forkpoint.api.settings import Settings
from forkpoint.api.store import JobStore
from forkpoint.errors import QueueFull

DAY = 86400.0


def docs(n: int) -> list[tuple[str, str]]:
    return [(f"{i}.txt", "Ann Lee") for i in range(n)]


def test_one_key_past_its_share_gets_queue_full_and_another_key_still_gets_in(tmp_path):
    store = JobStore(tmp_path / "jobs.db")
    limits = {"max_waiting": 10, "max_waiting_per_owner": 6}
    store.create_job(JobTask.named("t"), docs(6), owner="alice", **limits)
    with pytest.raises(QueueFull, match="one key's share of the queue is 6"):
        store.create_job(JobTask.named("t"), docs(1), owner="alice", **limits)
    job, created = store.create_job(JobTask.named("t"), docs(4), owner="bob", **limits)
    assert created and job.total == 4


def test_unreadable_documents_count_toward_the_queue_limit(tmp_path):
    store = JobStore(tmp_path / "jobs.db")
    unreadable = {i: {"file": f"{i}.txt", "status": "error", "error": "damaged"} for i in range(5)}
    with pytest.raises(QueueFull, match="the limit is 4"):
        store.create_job(JobTask.named("t"), docs(5), max_waiting=4, failed=unreadable)


def test_finished_jobs_past_the_retention_period_are_deleted_with_everything_they_stored(
    tmp_path,
):
    settings = Settings(
        db_path=tmp_path / "jobs.db", sglang_url="http://127.0.0.1:9", retention_days=30
    )
    store = JobStore(settings.db_path)
    runner = JobRunner(store, settings, Metrics())
    old, _ = store.create_job(JobTask.named("t"), docs(2), labels={"0.txt": {"name": "Ann"}})
    store.record(old.id, 0, {"file": "0.txt", "data": {"name": "Ann"}})
    store.record(old.id, 1, {"file": "1.txt", "data": {"name": "Ann"}})
    second, _ = store.create_job(JobTask.named("t"), docs(1))
    store.record(second.id, 0, {"file": "0.txt", "data": {}})
    running, _ = store.create_job(JobTask.named("t"), docs(2))  # never finishes
    assert store.job(old.id).state == "done"

    now = time.time()
    assert runner.purge_expired(now=now + 29 * DAY) == 0
    assert runner.purge_expired(now=now + 31 * DAY) == 2  # both finished a moment ago
    assert store.job(old.id) is None and store.job(second.id) is None
    assert store.results(old.id) == [] and store.labels(old.id) == {}
    assert store.job(running.id).state == "queued"
    assert len(store.pending(running.id)) == 2
    assert runner.purge_expired(now=now + 3650 * DAY) == 0  # unfinished: kept, however old
