"""NGRAM speculation served by SGLang on the CPU, and the gateway's job corpora on it.

One module, so both halves share one `ngram_server` and one `plain_server` (module-scoped: the
suite starts each once, not once per file, and never holds more of them than RAM allows).

Speculation changes the speed, never the answer: three settings on the same invoices, one
request at a time, temperature 0, float32: speculation off, NGRAM, and NGRAM with the documents
loaded as a job corpus. Every output must be identical, and the accept length SGLang reports
must be what perf/studies/ngram_replay.py computes from the speculation-off outputs, step for
step (on two documents: every verify step of each is compared).

Job corpora: a job's documents are registered as it starts and removed when the job ends
(done or cancelled), and a restart removes what a crash left behind; `plain_server`
(speculation off) refuses them.
"""

import time
from collections import Counter

import httpx
import pytest

from forkpoint.api.job_task import JobTask
from forkpoint.api.jobs import JobRunner
from forkpoint.api.metrics import Metrics
from forkpoint.api.settings import Settings
from forkpoint.api.store import JobStore
from forkpoint.perf.bench.corpus import CorpusSpec, generate
from forkpoint.perf.studies.ngram_replay import greedy_runs, replay
from forkpoint.perf.studies.speculation import served_steps
from forkpoint.programs.documents.document import from_text
from forkpoint.runtime.corpora import JobCorpora
from forkpoint.runtime.profiles import Speculation

pytestmark = pytest.mark.slow
DOCS = generate(CorpusSpec(documents=2, min_tokens=150, max_tokens=300, seed=7))


def run_all(url: str) -> list[dict]:
    httpx.post(f"{url}/flush_cache", timeout=60).raise_for_status()  # an empty NGRAM trie too
    return greedy_runs(url, "invoices", "chatml", DOCS, concurrency=1)


@pytest.fixture(scope="module")
def baseline(plain_server):
    return run_all(plain_server.url)


def assert_served_equals_replayed(served: list[dict], baseline: list[dict], speculation, budget):
    replayed = replay(
        baseline,
        draft=speculation.num_draft_tokens,
        bfs=speculation.max_bfs_breadth,
        depth=speculation.max_trie_depth,
        sam_budget=budget,
        capacity=speculation.capacity,
    )
    for run, steps in zip(served, replayed["per_document"], strict=True):
        assert served_steps(run) == Counter(steps), run["name"]
    return replayed["mean_accept_length"]


def test_ngram_outputs_are_identical_and_accepted_as_the_replay_predicts(ngram_server, baseline):
    served = run_all(ngram_server.url)
    assert [r["output"] for r in served] == [b["output"] for b in baseline]
    assert all(r["spec"]["spec_verify_ct"] > 0 for r in served)  # the verify path really ran
    speculation = ngram_server.profile.speculation
    accept = assert_served_equals_replayed(served, baseline, speculation, budget=0)
    assert accept > 1.5  # drafts were accepted: fewer steps than tokens


def test_with_the_job_corpus_outputs_are_identical_and_accepted_as_replayed(ngram_server, baseline):
    speculation = ngram_server.profile.speculation
    corpora = JobCorpora(ngram_server.url, speculation)
    httpx.post(f"{ngram_server.url}/flush_cache", timeout=60).raise_for_status()
    stats = corpora.register("served-test", [text for _, text in DOCS])
    try:
        assert stats["tokens_loaded"] > 0 and stats["documents_sent"] == len(DOCS)
        served = greedy_runs(ngram_server.url, "invoices", "chatml", DOCS, concurrency=1)
    finally:
        assert corpora.remove("served-test")
    assert [r["output"] for r in served] == [b["output"] for b in baseline]
    assert_served_equals_replayed(served, baseline, speculation, budget=4)


def test_the_embedded_profile_serves_with_ngram_on(sglang_server):
    assert sglang_server.profile.speculation.algorithm == "NGRAM"
    answer = httpx.post(
        f"{sglang_server.url}/generate",
        timeout=300,
        json={
            "text": "Say: one two three four five six seven eight nine ten.",
            "sampling_params": {"temperature": 0, "max_new_tokens": 24},
        },
    ).json()
    assert answer["meta_info"]["spec_verify_ct"] > 0


# ---- the gateway's job corpora on the same servers ----


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


def test_a_jobs_corpus_is_loaded_as_it_runs_and_removed_when_it_is_done_or_cancelled(
    runner, ngram_server
):
    """The corpus loads beside the job's first documents (it does not hold their start back)
    and is on the runtime while they run; it is removed when the job is done or cancelled,
    also when that happens before its load answers."""
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
    wait_for(lambda: runner.store.corpus(job.id) is not None, "the job's corpus load to answer")
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
