"""NGRAM speculation served by SGLang on the CPU: it changes the speed, never the answer.

Three settings on the same invoices, one request at a time, temperature 0, float32: speculation
off, NGRAM, and NGRAM with the documents loaded as a job corpus. Every output must be identical,
and the accept length SGLang reports must be what perf/studies/ngram_replay.py computes from the
speculation-off outputs, step for step.
"""

from collections import Counter

import httpx
import pytest

from forkpoint.perf.bench.corpus import CorpusSpec, generate
from forkpoint.perf.studies.ngram_replay import greedy_runs, replay
from forkpoint.perf.studies.speculation import served_steps
from forkpoint.runtime.corpora import JobCorpora

pytestmark = pytest.mark.slow
DOCS = generate(CorpusSpec(documents=4, min_tokens=150, max_tokens=300, seed=7))


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
