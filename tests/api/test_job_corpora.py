"""NGRAM job corpora: a job's documents are registered before they run and removed when the job
ends (done or cancelled), and a restart removes what a crash left behind.

All against real SGLang servers on the CPU: `ngram_server` (NGRAM with draft slots for external
corpora, so /add_external_corpus, /list_external_corpora and /remove_external_corpus answer for
real) and `plain_server` (speculation off, which refuses them).
"""

import time

import httpx
import pytest

from forkpoint.api.job_task import JobTask
from forkpoint.api.jobs import JobRunner
from forkpoint.api.metrics import Metrics
from forkpoint.api.settings import Settings
from forkpoint.api.store import JobStore
from forkpoint.programs.documents.document import from_text
from forkpoint.runtime.corpora import JobCorpora
from forkpoint.runtime.profiles import Speculation

pytestmark = pytest.mark.slow


def corpora_on(server, **limits) -> JobCorpora:
    return JobCorpora(server.url, server.profile.speculation.model_copy(update=limits))


def test_what_is_sent_is_bounded_by_the_token_budget_and_named_after_the_job(ngram_server):
    corpora = corpora_on(ngram_server, external_corpus_max_tokens=100)
    texts = [f"Invoice {i}: " + "freight handling " * 14 for i in range(5)]  # ~250 chars each
    stats = corpora.register("bounded", texts)
    try:
        assert stats["corpus_id"] == "forkpoint-job-bounded"
        assert (stats["documents"], stats["documents_sent"]) == (5, 1)  # ~300 chars of budget
        assert corpora.loaded() == {"bounded": stats["tokens_loaded"]} and stats["tokens_loaded"]
    finally:
        assert corpora.remove("bounded")
    assert corpora.loaded() == {}


def test_speculation_off_sends_nothing(ngram_server):
    corpora = JobCorpora(ngram_server.url, Speculation())
    assert corpora.register("j1", ["text"]) is None and not corpora.remove("j1")
    assert corpora_on(ngram_server).loaded() == {}


def test_a_runtime_without_speculation_refuses_and_the_stats_say_why(plain_server):
    speculation = Speculation(algorithm="NGRAM", external_sam_budget=3)
    stats = JobCorpora(plain_server.url, speculation).register("j1", ["Ann Lee, ann@x.org"])
    assert stats["tokens_loaded"] == 0
    assert stats["note"] == "not loaded: Ngram speculative decoding is not enabled."


def add_raw(server, corpus_id: str, text: str) -> None:
    answer = httpx.post(
        f"{server.url}/add_external_corpus",
        timeout=60,
        json={"corpus_id": corpus_id, "documents": [text]},
    ).json()
    assert answer["success"], answer


def test_a_restart_sweeps_corpora_of_jobs_that_are_not_running(ngram_server):
    for corpus in ("forkpoint-job-old", "forkpoint-job-live", "user"):
        add_raw(ngram_server, corpus, f"text of {corpus}")
    corpora = corpora_on(ngram_server)
    try:
        assert corpora.sweep(running={"live"}) == ["old"]
        assert set(corpora.loaded()) == {"live"}
        listed = httpx.get(f"{ngram_server.url}/list_external_corpora").json()
        assert "user" in listed["corpus_token_counts"]  # others' corpora untouched
    finally:
        corpora.remove("live")
        httpx.post(f"{ngram_server.url}/remove_external_corpus", json={"corpus_id": "user"})


@pytest.fixture
def runner(ngram_server, tmp_path):
    add_raw(ngram_server, "forkpoint-job-leaked", "left by a crash")
    settings = Settings(sglang_url=ngram_server.url, db_path=tmp_path / "j.db", concurrency=4)
    store = JobStore(settings.db_path)
    runner = JobRunner(store, settings, Metrics(), corpora=corpora_on(ngram_server))
    runner.start()
    yield runner
    runner.stop()
    store.close()


def wait_for(condition, what: str, seconds: float = 240, every: float = 0.2):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds:.0f} s for {what}"
        time.sleep(every)


def test_a_jobs_corpus_is_loaded_before_it_runs_and_removed_when_it_is_done_or_cancelled(
    runner, ngram_server
):
    corpora = corpora_on(ngram_server)
    assert "leaked" not in corpora.loaded()  # swept at start
    task = JobTask.named("contacts")
    docs = [from_text(f"{i}.txt", f"Regards, Ann Lee {i}, ann{i}@lumen.io") for i in range(3)]
    job, _ = runner.submit(task, docs)
    seen_while_running: set[str] = set()

    def done() -> bool:
        seen_while_running.update(corpora.loaded())
        return runner.store.job(job.id).state == "done"

    wait_for(done, "the job to be done", every=0.05)
    stats = runner.store.corpus(job.id)
    assert stats["documents_sent"] == 3 and stats["tokens_loaded"] > 0
    assert job.id in seen_while_running  # held by the runtime while the documents ran
    wait_for(lambda: job.id not in corpora.loaded(), "the done job's corpus to be removed")

    cancelled, _ = runner.submit(task, docs)
    runner.cancel(cancelled.id)  # most likely while its corpus is still loading
    assert runner.store.job(cancelled.id).state == "cancelled"

    def load_answered() -> bool:
        return runner.store.corpus(cancelled.id) is not None

    wait_for(load_answered, "the cancelled job's corpus load to answer")
    wait_for(lambda: corpora.loaded() == {}, "the loader to remove the cancelled job's corpus")
