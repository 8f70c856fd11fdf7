"""The job store: accepted work is durable and each result is recorded exactly once."""

from forkpoint.api.store import JobStore


def test_a_job_and_its_documents_are_stored_together_and_survive_reopening(tmp_path):
    store = JobStore(tmp_path / "jobs.db")
    job = store.create_job("contacts", [("a.txt", "A"), ("b.txt", "B")])
    store.close()
    reopened = JobStore(tmp_path / "jobs.db")
    assert reopened.job(job.id).total == 2
    assert [name for _, name, _ in reopened.pending(job.id)] == ["a.txt", "b.txt"]
    assert [j.id for j in reopened.unfinished()] == [job.id]


def test_a_result_is_recorded_once_even_if_the_document_is_sent_twice(tmp_path):
    store = JobStore(tmp_path / "jobs.db")
    job = store.create_job("contacts", [("a.txt", "A")])
    first = {"file": "a.txt", "ok": True, "data": {"name": "A"}, "usage": {"prompt_tokens": 5}}
    assert store.record(job.id, 0, first) is True
    assert store.record(job.id, 0, {**first, "data": {"name": "changed"}}) is False
    assert store.result_count(job.id, 0) == 1
    assert store.results(job.id) == [first]
    assert store.job(job.id).state == "done"


def test_results_stream_in_document_order_up_to_the_first_gap(tmp_path):
    store = JobStore(tmp_path / "jobs.db")
    job = store.create_job("t", [(f"{i}.txt", "x") for i in range(4)])
    for index in (0, 1, 3):
        store.record(job.id, index, {"file": f"{index}.txt", "ok": index != 1})
    assert [r["file"] for r in store.results(job.id)] == ["0.txt", "1.txt"]
    assert [r["file"] for r in store.results(job.id, start=2)] == []
    counts = store.counts(job.id)
    assert (counts.done, counts.failed) == (3, 1)
    assert [i for i, _, _ in store.pending(job.id)] == [2]
    assert store.pending_count() == 1


def test_a_cancelled_job_stays_cancelled(tmp_path):
    store = JobStore(tmp_path / "jobs.db")
    job = store.create_job("t", [("a", "x"), ("b", "y")])
    store.set_state(job.id, "cancelled")
    store.record(job.id, 0, {"ok": True})
    store.record(job.id, 1, {"ok": True})
    store.set_state(job.id, "running")
    assert store.job(job.id).state == "cancelled"
    assert store.unfinished() == []
