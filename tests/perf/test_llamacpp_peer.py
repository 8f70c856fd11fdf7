"""The llama.cpp peer gets exactly forkpoint's work, and its figures add up like ours.

A real llama-server (llama.cpp's own C++ server, built once into the cache from the source
vendored in llama-cpp-python) serving the same SmolLM2 GGUF the embedded model is converted from.

The suite runs the llama-server kind only: the other kind, llama-cpp-python's server, needs pip
to compile the same source again as a library (~5 min on 2 cores, on an empty cache) and goes
through the same run_peer and bench accounting; its own argv and tokenize route are what differ,
and the bench (`perf/bench/bench.py --runs llama-cpp-python`) runs it against the same job.
"""

import os
import signal

import httpx
import pytest

from forkpoint.perf.bench import bench
from forkpoint.perf.bench.corpus import CorpusSpec, generate
from forkpoint.perf.peers import llamacpp
from forkpoint.perf.peers.llamacpp import KINDS, PeerServer, run_peer
from forkpoint.programs.prompt import task_prompt
from forkpoint.programs.tasks.registry import get_task

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["llama-server"])
def peer(request):
    assert request.param in KINDS
    with PeerServer(request.param, slots=1) as server:
        yield server


def tokens(peer: PeerServer, text: str) -> int:
    """How many tokens the peer's own tokenizer makes of `text` (as it would for a prompt)."""
    if peer.kind == "llama-server":
        answer = httpx.post(f"{peer.url}/tokenize", json={"content": text, "add_special": True})
    else:
        answer = httpx.post(f"{peer.url}/extras/tokenize", json={"input": text})
    return len(answer.json()["tokens"])


def test_the_peer_reads_forkpoints_prompts_answers_under_the_schema_and_its_totals_add_up(peer):
    task = get_task("invoices")
    prompt = task_prompt(task, "chatml")  # the embedded profile's format
    documents = generate(CorpusSpec(documents=2, min_tokens=80, max_tokens=120, seed=5))
    prefix = tokens(peer, prompt.prefix)
    outcome = run_peer(peer, prompt, task, documents, 1, prefix)
    results, wall, _, _ = outcome
    figures = bench.measure(peer.kind, *outcome)

    # the same text forkpoint sends, token for token
    assert [r.usage.prompt_tokens for r in results] == [
        tokens(peer, prompt.full(text)) for _, text in documents
    ]
    # the task's schema as the peer's grammar: every answer validates against the task's model
    assert [r.status for r in results] == ["ok", "ok"]
    assert all(isinstance(r.data, task.output_model) for r in results)
    output = sum(r.usage.completion_tokens for r in results)
    assert figures["documents"] == 2 and figures["ok"] == 2
    assert figures["prompt_tokens"] == sum(r.usage.prompt_tokens for r in results)
    assert figures["output_tokens"] == output > 0
    assert figures["write_tokens_per_second"] == round(output / wall, 1)
    assert figures["timeline"][-1][1:] == (figures["prompt_tokens"], output)


@pytest.mark.parametrize("peer", ["llama-server"], indirect=True)  # the other does not report it
def test_llama_server_reuses_the_task_prefix_from_its_slots_prompt_cache(peer):
    task = get_task("invoices")
    prompt = task_prompt(task, "chatml")
    documents = generate(CorpusSpec(documents=2, min_tokens=80, max_tokens=120, seed=6))
    prefix = tokens(peer, prompt.prefix)
    results, *_ = run_peer(peer, prompt, task, documents, 1, prefix)
    # one slot: the second document finds the prefix (at least) in the slot's cache
    assert results[1].usage.cached_tokens >= prefix


@pytest.fixture
def lone_llama_server():
    with PeerServer("llama-server", slots=1) as server:
        yield server


def test_a_peer_that_exits_mid_run_stops_the_run_with_its_log(lone_llama_server):
    task = get_task("invoices")
    documents = generate(CorpusSpec(documents=2, min_tokens=80, max_tokens=120, seed=7))
    lone_llama_server.process.kill()
    lone_llama_server.process.wait()
    with pytest.raises(RuntimeError, match=r"llama-server is gone \(exit -9\)[\s\S]*last lines"):
        run_peer(lone_llama_server, task_prompt(task, "chatml"), task, documents, 1, 0)


@pytest.fixture
def peer_alive_but_stuck(lone_llama_server):
    os.kill(lone_llama_server.process.pid, signal.SIGSTOP)  # accepts connections, never answers
    yield lone_llama_server
    os.kill(lone_llama_server.process.pid, signal.SIGCONT)


def test_a_stuck_request_is_its_documents_error_and_the_run_goes_on(
    peer_alive_but_stuck, monkeypatch
):
    task, peer = get_task("invoices"), peer_alive_but_stuck
    documents = generate(CorpusSpec(documents=2, min_tokens=80, max_tokens=120, seed=7))
    monkeypatch.setattr(llamacpp, "REQUEST_TIMEOUT", httpx.Timeout(2.0))
    results, *_ = run_peer(peer, task_prompt(task, "chatml"), task, documents, 1, 0)
    assert [r.status for r in results] == ["error", "error"]
    assert all("ReadTimeout" in r.error for r in results)
