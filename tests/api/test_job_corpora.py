"""NGRAM job corpora: a job's documents are registered before they run and removed when the job
ends (done or cancelled), and a restart removes what a crash left behind.

The CPU runtime here serves without speculation, so SGLang answers the corpus endpoints with
"Ngram speculative decoding is not enabled." — that refusal is tested against the real server.
The lifecycle (what is sent, when it is removed) is tested against `SpeculativeSGLang`, a replay
of the corpus endpoints with the exact request and response shapes of SGLang 0.5.23's
http_server.py / tokenizer_control_mixin.py, because only a speculative server answers them for
real; the documents themselves still run on the real runtime.
"""

import json
import time

import httpx
import pytest

from forkpoint.api.corpora import JobCorpora
from forkpoint.api.jobs import JobRunner
from forkpoint.api.metrics import Metrics
from forkpoint.api.settings import Settings
from forkpoint.api.store import JobStore
from forkpoint.programs.documents import from_text
from forkpoint.programs.registry import get_task
from forkpoint.runtime.profiles import Speculation

NGRAM = Speculation(algorithm="NGRAM", external_sam_budget=3, external_corpus_max_tokens=100)


class SpeculativeSGLang(httpx.MockTransport):
    """The corpus endpoints of a speculative SGLang server, replayed with their real shapes."""

    def __init__(self, corpora: dict[str, int] | None = None) -> None:
        self.corpora = dict(corpora or {})
        self.requests: list[tuple[str, dict]] = []
        super().__init__(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        body = json.loads(request.content) if request.content else {}
        self.requests.append((path, body))
        if path == "/add_external_corpus":
            tokens = sum(len(doc.split()) for doc in body["documents"])
            self.corpora[body["corpus_id"]] = tokens
            return httpx.Response(
                200,
                json={
                    "success": True,
                    "corpus_id": body["corpus_id"],
                    "message": "",
                    "loaded_token_count": tokens,
                },
            )
        if path == "/remove_external_corpus":
            found = self.corpora.pop(body["corpus_id"], None) is not None
            message = "" if found else f"Corpus {body['corpus_id']} not found."
            return httpx.Response(
                200 if found else 400, json={"success": found, "message": message}
            )
        if path == "/list_external_corpora":
            return httpx.Response(
                200, json={"success": True, "message": "", "corpus_token_counts": self.corpora}
            )
        return httpx.Response(404, json={"detail": "Not Found"})  # fmt: skip


def test_what_is_sent_is_bounded_by_the_token_budget_and_named_after_the_job():
    replay = SpeculativeSGLang()
    corpora = JobCorpora("http://runtime", NGRAM, transport=replay)
    texts = ["word " * 24] * 5  # 120 characters each; the budget is ~300 (100 tokens × 3)
    stats = corpora.register("j1", texts)
    [(path, body)] = replay.requests
    assert path == "/add_external_corpus" and body["corpus_id"] == "forkpoint-job-j1"
    assert len(body["documents"]) == 2
    assert stats == {"corpus_id": "forkpoint-job-j1", "documents": 5, "documents_sent": 2,
                     "tokens_loaded": 48}  # fmt: skip


def test_speculation_off_sends_nothing():
    replay = SpeculativeSGLang()
    corpora = JobCorpora("http://runtime", Speculation(), transport=replay)
    assert corpora.register("j1", ["text"]) is None and not corpora.remove("j1")
    assert replay.requests == []


def test_a_restart_sweeps_corpora_of_jobs_that_are_not_running():
    replay = SpeculativeSGLang({"forkpoint-job-old": 10, "forkpoint-job-live": 10, "user": 5})
    corpora = JobCorpora("http://runtime", NGRAM, transport=replay)
    assert corpora.sweep(running={"live"}) == ["old"]
    assert set(replay.corpora) == {"forkpoint-job-live", "user"}  # others' corpora untouched


@pytest.mark.slow
def test_the_real_runtime_without_speculation_refuses_and_the_stats_say_why(sglang_server):
    stats = JobCorpora(sglang_server.url, NGRAM).register("j1", ["Ann Lee, ann@x.org"])
    assert stats["tokens_loaded"] == 0
    assert stats["note"] == "not loaded: Ngram speculative decoding is not enabled."


@pytest.fixture
def runner_with_replay(sglang_server, tmp_path):
    replay = SpeculativeSGLang({"forkpoint-job-leaked": 7})
    settings = Settings(sglang_url=sglang_server.url, db_path=tmp_path / "j.db", concurrency=4)
    store = JobStore(settings.db_path)
    runner = JobRunner(store, settings, Metrics(),
                       corpora=JobCorpora(sglang_server.url, NGRAM, transport=replay))  # fmt: skip
    runner.start()
    yield runner, replay
    runner.stop()
    store.close()


def wait_for(condition, seconds=180):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.2)


@pytest.mark.slow
def test_a_jobs_corpus_is_loaded_before_it_runs_and_removed_when_it_is_done_or_cancelled(
    runner_with_replay,
):
    runner, replay = runner_with_replay
    assert "forkpoint-job-leaked" not in replay.corpora  # swept at start
    task = get_task("contacts")
    docs = [from_text(f"{i}.txt", f"Regards, Ann Lee {i}, ann{i}@lumen.io") for i in range(3)]
    job, _ = runner.submit(task, docs)
    wait_for(lambda: runner.store.job(job.id).state == "done")
    [added] = [body for path, body in replay.requests if path == "/add_external_corpus"]
    assert added == {"corpus_id": f"forkpoint-job-{job.id}", "documents": [d.text for d in docs]}
    wait_for(lambda: f"forkpoint-job-{job.id}" not in replay.corpora)
    assert runner.store.corpus(job.id)["documents_sent"] == 3

    cancelled, _ = runner.submit(task, docs)
    runner.cancel(cancelled.id)
    wait_for(lambda: ("/remove_external_corpus", {"corpus_id": f"forkpoint-job-{cancelled.id}"})
             in replay.requests)  # fmt: skip
    assert f"forkpoint-job-{cancelled.id}" not in replay.corpora
