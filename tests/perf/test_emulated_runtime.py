"""The emulated runtime (perf/emulated/) speaks SGLang as forkpoint uses it, refuses what
xgrammar refuses, and carries a real job through the real gateway. No wall-clock bounds."""

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from forkpoint.perf.bench.workload import load_workload
from forkpoint.perf.emulated.recording import Recording, first_line, invoice_answer
from forkpoint.perf.emulated.server import build, create_app
from forkpoint.perf.emulated.service import Pacer, projected
from forkpoint.programs.gateway_client import GatewayClient
from forkpoint.runtime.client import RuntimeClient
from forkpoint.runtime.launcher import free_port

# Fast: the projected server × 1000 answers in milliseconds.
MULTIPLIER = 1000.0
DOCS = load_workload(docs=3).documents


@pytest.fixture(scope="module")
def emulated() -> Iterator[str]:
    """The emulated runtime on a free loopback port, answering the 3 documents: its URL."""
    emulator = build(MULTIPLIER, Recording.ground_truth(DOCS))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(emulator), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive()
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_a_generated_invoice_has_its_answer_in_its_own_lines():
    name, text = DOCS[0]
    answer = invoice_answer(text)
    assert answer is not None
    assert answer["invoice_number"] in first_line(text) and answer["vendor"] in first_line(text)
    assert answer["currency"] in text and f"{answer['total']:.2f}" in text
    assert all(item["description"] in text for item in answer["line_items"])


def test_the_pacer_answers_no_sooner_than_the_latency_nor_faster_than_the_rate():
    service = projected(1.0)
    pacer = Pacer(service)
    due = [pacer.due(600, arrived=0.0) for _ in range(100)]
    assert due[0] == pytest.approx(service.latency(600))
    # 100 documents at once finish at the server's rate, not all after one latency
    assert due[-1] == pytest.approx(100 * service.share(600))
    assert 100 / due[-1] == pytest.approx(service.documents_per_second, rel=0.5)


def test_a_prefill_only_request_takes_its_prefill_alone():
    """The fork point's warm-up (max_new_tokens=0) is one prefill, not a whole answer's decode,
    and a request allowed fewer tokens than the recorded mean decodes only those."""
    service = projected(1.0)
    prefill = 856 * service.prefill_seconds_per_token
    assert service.latency(856, max_new_tokens=0) == pytest.approx(prefill)
    assert service.share(856, max_new_tokens=0) == pytest.approx(prefill)
    assert Pacer(service).due(856, arrived=0.0, max_new_tokens=0) == pytest.approx(prefill)
    ten_steps = 10 / service.tokens_per_step * service.step_seconds
    assert service.latency(0, max_new_tokens=10) == pytest.approx(ten_steps)
    assert service.latency(0, max_new_tokens=10**6) == service.latency(0)


def test_it_answers_the_endpoints_forkpoint_calls_in_sglangs_shapes(emulated):
    client = RuntimeClient(emulated)
    info = client.model_info()
    assert {"model_path", "tokenizer_path", "is_generation", "architectures"} <= set(info)
    assert client.healthy("/health") and client.healthy("/health_generate")
    counts, context = client.tokenize(["one two", "three"])
    assert len(counts) == 2 and all(c > 0 for c in counts) and context > 0
    assert client.flush_cache()
    assert client.json("GET", "/server_info")["version"]
    added = client.json(
        "POST", "/add_external_corpus", json={"corpus_id": "c1", "documents": [DOCS[0][1]]}
    )
    assert added["success"] and added["loaded_token_count"] > 0
    assert client.json("GET", "/list_external_corpora")["corpus_token_counts"] == {
        "c1": added["loaded_token_count"]
    }
    assert client.json("POST", "/remove_external_corpus", json={"corpus_id": "c1"})["success"]


def test_generate_answers_the_recorded_answer_with_sglangs_meta_info(emulated):
    client = RuntimeClient(emulated)
    text = "Document:\n" + DOCS[1][1]
    body = {"text": text, "sampling_params": {"max_new_tokens": 400, "json_schema": "{}"}}
    first = client.json("POST", "/generate", json=body)
    again = client.json("POST", "/generate", json=body)
    assert first["text"] == Recording.ground_truth(DOCS).find(text)
    meta = again["meta_info"]
    assert meta["finish_reason"]["type"] == "stop"
    assert meta["prompt_tokens"] > meta["cached_tokens"] > 0  # the same prompt, cached
    assert meta["completion_tokens"] / meta["spec_verify_ct"] == pytest.approx(
        meta["spec_accept_length"]
    )
    body["sampling_params"]["max_new_tokens"] = 5
    cut = client.json("POST", "/generate", json=body)["meta_info"]
    assert cut["finish_reason"] == {"type": "length", "length": 5}
    assert cut["completion_tokens"] == 5


def test_a_grammar_xgrammar_refuses_is_answered_400_like_sglang(emulated):
    bad = {"type": "array", "items": {"type": "string"}, "minItems": 3, "maxItems": 1}
    for params in ({"json_schema": str(bad).replace("'", '"')}, {"ebnf": "root ::= undefined"}):
        body = {"text": "Document:\n" + DOCS[0][1], "sampling_params": params}
        answer = httpx.post(f"{emulated}/generate", json=body, timeout=60)
        assert answer.status_code == 400
        assert "Failed to compile" in answer.json()["error"]["message"]


def test_a_three_document_job_through_the_gateway_completes_validated(emulated):
    from forkpoint.perf.bench.bench import serving_gateway

    with serving_gateway(emulated, 4, len(DOCS)) as url:
        client = GatewayClient(url, timeout=120)
        job = client.submit("invoices", DOCS)
        records = list(client.results(job["id"]))
    assert [r["status"] for r in records] == ["ok"] * 3
    truth = [invoice_answer(text) for _, text in DOCS]
    assert [r["data"]["invoice_number"] for r in records] == [
        t["invoice_number"] for t in truth if t
    ]
    assert all(g["match"] == "exact" for r in records for g in r["grounding"])
    assert all(r["usage"]["cached_tokens"] >= 800 for r in records)  # the warmed prefix
